"""`python -m hub_ext.cli` runs the `goldenhub` command."""

import sys

from hub_ext.cli.main import main

sys.exit(main())
