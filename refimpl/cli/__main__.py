"""`python -m refimpl.cli`."""
import sys

from . import main

sys.exit(main())
