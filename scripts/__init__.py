"""Command-line tools and run scripts. Once the project is installed (``pip install --no-build-isolation -e .``), the
Python ones run from any folder as ``python -m scripts.<name>`` or ``python path/to/scripts/<name>.py``."""
