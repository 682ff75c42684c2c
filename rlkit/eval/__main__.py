"""``python -m rlkit.eval ...`` / ``accelerate launch -m rlkit.eval ...``: the ``rlkit eval`` command."""

import sys

from rlkit.eval.cli import main

sys.exit(main())
