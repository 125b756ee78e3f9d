"""`python -m aigc`: the command line (aigc/cli/)."""
import sys

from aigc.cli import main

sys.exit(main())
