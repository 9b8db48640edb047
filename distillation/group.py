"""One patient (or pooled group) of a pipeline run once its teacher and student baseline are trained: the context
that the loss-weight search (``distillation/search.py``) and the CSV row (``distillation/report.py``) both read, kept
in one object so the two signatures cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from configs import RunConfig
from data_provider.data_factory import Splits
from distillation.config import PipelineConfig
from exp.run import RunResult


@dataclass(frozen=True)
class Group:
    """A group's settings, phase configurations, windows and reference runs."""

    cfg: PipelineConfig
    tag: str  # the patient id, or the pooled group's name: the CSV's ``patient`` column and the log prefix
    configs: dict[str, RunConfig]  # teacher, baseline and distilled phase configurations (``phase_configs``)
    splits: Splits  # the students' windows
    teacher: RunResult
    baseline: RunResult
