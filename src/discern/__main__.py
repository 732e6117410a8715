import sys

from discern.cli import main

sys.exit(main())
