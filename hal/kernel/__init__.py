"""The kernel language (being assembled)."""
