"""Teacher -> student pair comparison for distillation (logic in ``distillation/compare.py``).

Once the project is installed (``pip install --no-build-isolation -e .``, README), from any folder, either way::

    python scripts/distillation_comparison.py --mode quick --patients 1001 --epochs 2
    python -m scripts.distillation_comparison --help
"""

import sys

from distillation.compare import main

if __name__ == "__main__":
    sys.exit(main())
