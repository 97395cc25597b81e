"""``python -m maildrill`` is the ``maildrill`` command."""

import sys

from maildrill.cli import main

sys.exit(main())
