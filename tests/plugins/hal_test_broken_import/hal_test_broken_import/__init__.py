"""A plugin whose vendor SDK is missing: importing it fails (hal must list it and go on)."""

import acme_accelerator_sdk  # noqa: F401  (not installed anywhere)

api_version = (1, 0)
