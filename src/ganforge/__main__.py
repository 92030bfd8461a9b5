"""``python -m ganforge`` (also what ``torchrun -m ganforge`` runs)."""

import sys

from ganforge.cli import main

sys.exit(main())
