"""Calls sys.exit() at import: the process must go on."""

import sys

sys.exit("acme: no licence")
