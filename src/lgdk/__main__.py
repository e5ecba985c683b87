"""`python -m lgdk`: the `lgdk` command."""

import sys

from lgdk.cli import console

sys.exit(console())
