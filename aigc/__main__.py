"""`python -m aigc`: the command line (aigc/cli/)."""
import sys

from aigc import signals

signals.catch_early()  # before any import that takes time: a stop sent now is kept for the trainer

from aigc.cli import main  # noqa: E402

sys.exit(main())
