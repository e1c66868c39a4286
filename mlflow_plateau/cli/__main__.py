"""``python -m mlflow_plateau.cli``: the ``mlflow-plateau`` command."""

import sys

from . import main

sys.exit(main())
