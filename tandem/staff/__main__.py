"""`python -m tandem.staff`: see tandem/staff/cli.py."""

import sys

from tandem.staff.cli import main

sys.exit(main())
