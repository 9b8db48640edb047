"""Measuring and shipping forecasters: what a model costs to train and run, and its deployable copies.

- ``settings``: ``BenchSettings``, the precision context and the device helpers every timing shares;
- ``footprint``: parameters, checkpoint size, prompt length, FLOPs per window;
- ``memory``: peak memory of a measured block and of the process;
- ``throughput``: training and inference windows per second, repeated;
- ``latency``: one timing loop, summarised as the benchmark's batch-1 p50/p95 and the distillation rows' CPU
  milliseconds per window;
- ``export``: ONNX and ONNX Runtime INT8 copies, checked against the float model;
- ``levers``: the fast path's levers switched off one at a time, to measure what each buys;
- ``run``: the whole benchmark for one model, and a run as ``scripts/benchmark.py`` describes it;
- ``report``: the CSV row, the printed table and the per-label markdown summary.
"""
