"""The distillation guide's handle on the teachers: ``from distillation.scripts.train_teachers import TeacherTrainer``.

A facade, not a second implementation: ``teacher_models`` reads the backbone table (``models/backbones.py``, the rows
marked as teachers, the same ones ``--mode all`` pairs), and ``train`` runs the pipeline's own teacher phase
(``distillation.pipeline.train_teacher``) into the run folder the pipeline reads, so a teacher trained here ahead of
time is the one ``distill_pipeline.sh`` with the same settings reuses instead of training again.

    from distillation.scripts.train_teachers import TeacherTrainer
    TeacherTrainer().teacher_models   # {'GPT2': 'openai-community/gpt2', 'BERT': 'google-bert/bert-base-uncased', ...}
    TeacherTrainer().train(PipelineConfig(teacher="bert", student="tinybert", ...))
"""

from __future__ import annotations

from data_provider.data_factory import build_splits
from distillation.config import PipelineConfig, patient_groups, phase_configs, validate
from distillation.pipeline import train_teacher
from exp.run import RunResult
from models.backbones import BACKBONES


class TeacherTrainer:
    """The teacher table and the teacher phase of the distillation pipeline."""

    @property
    def teacher_models(self) -> dict[str, str]:
        """Short name -> Hugging Face id of every backbone row meant as a distillation teacher."""
        return {row.name: row.hf_id for row in BACKBONES if row.teacher}

    def train(self, cfg: PipelineConfig) -> list[RunResult]:
        """Train (or reuse) ``cfg``'s teacher for each of its patient groups (one per patient, or one pooled with
        ``all_patients``), checked as the pipeline checks it; the student is named but not trained."""
        validate(cfg)
        phases = []
        for tag, patients in patient_groups(cfg):
            configs = phase_configs(cfg, tag, patients)
            phases.append(train_teacher(cfg, tag, configs, build_splits(configs["teacher"].data)))
        return phases
