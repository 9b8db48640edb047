"""Teacher -> student pair comparison for distillation (logic in ``distillation/compare.py``).

Run from the repository root::

    python -m scripts.distillation_comparison --mode quick --patients 1001 --epochs 2
    python -m scripts.distillation_comparison --help
"""

import sys

from distillation.compare import main

if __name__ == "__main__":
    sys.exit(main())
