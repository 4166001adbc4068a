"""`python -m gancourse ...`: the course's command line (see gancourse.cli)."""
import sys

from gancourse.cli import main

sys.exit(main())
