"""`python -m valohai_hybrid.cli`: the console command."""

import sys

from . import main

sys.exit(main())
