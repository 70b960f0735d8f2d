"""``python -m hal`` is the ``hal`` command."""

import sys

from ._cli import main

sys.exit(main())
