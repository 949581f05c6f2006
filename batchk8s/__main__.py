"""`python -m batchk8s` runs the command line."""

import sys

from batchk8s.cli import main

sys.exit(main())
