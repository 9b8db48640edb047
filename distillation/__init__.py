"""Knowledge distillation of Time-LLM: a large-backbone teacher into a small-backbone student.

- ``losses``: the objective (truth, teacher forecast, hidden states), layer mapping, projections, ``DistillStudent``;
- ``teacher_cache``: the teacher's outputs computed once per training window;
- ``teacher_data``: teacher-only training windows beyond the labelled ones (``--teacher_data``); ``mixup``: blended
  windows and targets (``--mixup_alpha``);
- ``measure``: sizes and student-teacher agreement (CPU latency: ``bench.latency``);
- ``config``: a run's settings, their checks, each phase's RunConfig and run name, the --dry-run plan;
- ``phases``: train one phase through the engine, or reuse its finished run (``exp.reuse``);
- ``candidates``: the search's points (loss weights x teacher-data share x mixup alpha); ``search``: train them and
  choose on validation MSE;
- ``report``: CPU latency and the CSV row;
- ``pipeline``: teacher -> student baseline -> distilled student -> evaluation, one CSV row per patient;
- ``cli``: the pipeline's flags and its settings from them (``pipeline.main`` runs them: ``python -m
  distillation.pipeline``);
- ``compare``: many teacher -> student pairs, with a summary and an accuracy-latency chart;
- ``standard``: the standard report's preset (teacher kinds x students x seeds) and plan; ``references``: its Ridge
  reference; ``summary`` and ``answers``: its summary table, verdicts and the answers it opens with.
"""
