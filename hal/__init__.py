"""hal: one Python API for every kind of compute hardware (being assembled)."""
