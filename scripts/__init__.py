"""Command-line tools and run scripts; Python ones run from the repository root as ``python -m scripts.<name>``."""
