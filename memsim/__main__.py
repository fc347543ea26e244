"""``python -m memsim``: the command line."""

import sys

from memsim.cli.main import main

sys.exit(main())
