"""The model comparison: baselines, Time-LLM and its ablations on one grid, run by one engine and reported plainly.

``grid`` defines what runs (presets, rows, cells, patients, seeds, shards), ``settings`` the configuration of each
cell, ``standard`` the grid that ranks the methods and ``costs`` its time estimate; ``runner`` trains the cells and
writes their rows as it goes, ``tables`` reads and merges those rows, ``report`` and ``stats`` turn them into the
summary. The command line is ``scripts/compare_models.py``.
"""
