"""Knowledge distillation of Time-LLM: a large-backbone teacher into a small-backbone student.

- ``losses``: the objective (truth, teacher forecast, hidden states), layer mapping, projections, ``DistillStudent``;
- ``teacher_cache``: the teacher's outputs computed once per training window;
- ``measure``: CPU latency, sizes and student-teacher agreement;
- ``pipeline``: teacher -> student baseline -> distilled student -> evaluation, one CSV row per patient;
- ``compare``: many teacher -> student pairs, with a summary and an accuracy-latency chart.
"""
