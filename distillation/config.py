"""What a distillation run is: its settings (``PipelineConfig``), their checks, the patient groups, each phase's
``RunConfig`` and run folder name, the key that recognises a finished CSV row, and the plan ``--dry-run`` prints.

Nothing here loads data or a model (only the patient ids on disk), so a plan or a bad flag costs seconds.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

from configs import DataConfig, ModelConfig, RunConfig, TrainConfig
from configs.flags import check_config, flag, internal
from configs.identity import digest, settings
from data_provider.data_factory import validate as check_data
from data_provider.datasets import patient_ids
from distillation.candidates import Candidate, parse_levels, search_space, usable
from distillation.losses import LayerPairs, LossWeights, format_layer_map, parse_grid, uniform_layer_map
from models import MODELS, model_uses_llm
from models.backbones import WEIGHT_CHOICES, BackboneRow, backbone_names, resolve_backbone, safe_name
from utils.errors import LLMTimeError

# The last candidate, (1, 0, 0), is the truth-only objective of the student baseline: with it in the grid the
# validation search can choose "no distillation", so a distilled row is never forced to be worse than training alone.
DEFAULT_GRID = "0.5,0.5,0;0.5,0.5,0.1;0.2,0.8,0;1,0,0"
DEFAULT_MAX_TRAIN_WINDOWS = 12_000
DEFAULT_MAX_VAL_WINDOWS = 3_000
CSV_NAME = "distillation.csv"
TEACHER_VIEWS = ("standard", "privileged")
PHASE_CSV_NAME = "phase_results.csv"


@dataclass
class PipelineConfig:
    """Everything one pipeline run needs; the CLI and the pair comparison both build it.

    The data, the model settings both roles share and the optimiser are the sections every run has (``data``,
    ``model``, ``train``, with the pipeline's own window caps); the fields here are what differs per role or belongs
    to distillation. Each settable field declares its flag (``configs/flags.py``).
    """

    teacher: str = field(metadata=flag("teacher backbone row, e.g. bert"))
    student: str = field(metadata=flag(
        "student backbone row, e.g. tinybert, or a model without a language model: DLinear, PatchTST, MLP"))
    teacher_path: Optional[str] = field(default=None, metadata=flag(
        "local save_pretrained folder of the teacher backbone"))
    student_path: Optional[str] = field(default=None, metadata=flag(
        "local save_pretrained folder of the student backbone"))
    teacher_layers: Optional[int] = field(default=None, metadata=flag(
        "use the teacher's first N layers (llm_layers)", minimum=1))
    student_layers: Optional[int] = field(default=None, metadata=flag(
        "use the student's first N layers (llm_layers)", minimum=1))
    teacher_weights: Optional[str] = field(default=None, metadata=flag(
        "the teacher backbone's weights (default: --llm_weights)", choices=WEIGHT_CHOICES))
    student_weights: Optional[str] = field(default=None, metadata=flag(
        "the student backbone's weights (default: --llm_weights)", choices=WEIGHT_CHOICES))
    teacher_view: str = field(default="standard", metadata=flag(
        "what the teacher sees: standard = the student's inputs; privileged = also the basal, bolus and carbs logged "
        "within the forecast horizon (known afterwards from the log, never at forecast time; --horizon_events), as "
        "channels and prompt text, never future glucose. Baseline and distilled student always see history only",
        choices=TEACHER_VIEWS))
    teacher_base: Optional[str] = field(default=None, metadata=flag(
        "the teacher's base alone (default: --base, which every role shares): ridge = a ridge-based teacher, "
        "forecasting the correction to a closed-form ridge regression, under students without one",
        choices=("none", "ridge")))
    teacher_epochs: int = field(default=10, metadata=flag("epoch budget of the teacher", minimum=1))
    student_epochs: int = field(default=10, metadata=flag("epoch budget of the student baseline", minimum=1))
    distill_epochs: int = field(default=10, metadata=flag("epoch budget of each distilled student", minimum=1))
    all_patients: bool = field(default=False, metadata=flag(
        "train one pooled model per phase, not one per patient"))
    weights: Optional[LossWeights] = field(default=None, metadata=internal(
        "parsed from --alpha/--beta/--gamma; given: no search"))
    grid: list[LossWeights] = field(default_factory=lambda: parse_grid(DEFAULT_GRID), metadata=internal(
        "parsed from --grid: the candidates searched on validation when no weights are given"))
    teacher_data: str = field(default="0", metadata=flag(
        "the teacher as data: teacher-only training windows per epoch, as a multiple of the labelled ones, drawn "
        "afresh each epoch from the training windows whose labels the student does not see; their one target is "
        "the teacher's forecast. 0 = off; several values (e.g. 0,1) are candidates chosen on validation with the "
        "loss weights (distillation/teacher_data.py)"))
    mixup_alpha: str = field(default="0", metadata=flag(
        "mixup: blend the windows of each training batch in pairs, inputs and targets (teacher forecast, and truth "
        "where both are labelled) with one weight ~ Beta(ALPHA, ALPHA), seeded by --seed. 0 = off; several values "
        "(e.g. 0,0.2) are candidates chosen on validation (distillation/mixup.py)"))
    levers: Optional[tuple[float, float]] = field(default=None, metadata=internal(
        "(teacher-data share, mixup alpha) another seed's search chose: each weight candidate with a teacher-forecast "
        "term trains with them, the others plain, instead of searching --teacher_data x --mixup_alpha"))
    layer_map: Optional[LayerPairs] = field(default=None, metadata=internal(
        "parsed from --layer_map; None = the uniform mapping"))
    init_from_baseline: bool = field(default=False, metadata=flag("start the distilled student from the baseline"))
    max_cache_mb: float = field(default=4096.0, metadata=flag(
        "refuse a teacher hidden-state cache above this", above=0))
    latency_repeats: int = field(default=20, metadata=flag(
        "timed repeats at batch 1 (a quarter at batch 64)", minimum=1))
    latency_threads: int = field(default=1, metadata=flag(
        "CPU threads while timing (1: on a shared machine more threads mostly time contention)", minimum=1))
    int8: bool = field(default=True, metadata=flag(
        "also export the distilled student to ONNX, quantise it to INT8 and report its size, batch-1 latency and "
        "largest forecast difference (0 = skip: the int8_* columns stay empty)"))
    out: str = field(default="./distillation_runs", metadata=flag("folder for run folders and the CSV"))
    csv: Optional[str] = field(default=None, metadata=flag(f"results CSV (default <out>/{CSV_NAME})"))
    # A fixed training subset: the teacher cache holds the teacher's outputs for every window a student may draw.
    data: DataConfig = field(default_factory=lambda: DataConfig(max_train_windows=DEFAULT_MAX_TRAIN_WINDOWS,
                                                                max_val_windows=DEFAULT_MAX_VAL_WINDOWS,
                                                                train_draw="fixed"))
    model: ModelConfig = field(default_factory=ModelConfig)  # llm_weights: both roles' unless one says otherwise
    train: TrainConfig = field(default_factory=TrainConfig)  # every phase's, with its own epoch budget

    @property
    def csv_path(self) -> Path:
        return Path(self.csv) if self.csv else Path(self.out) / CSV_NAME

    @property
    def candidates(self) -> list[LossWeights]:
        """The weights to train, given or searched; for a student without a language model only those with no
        hidden-state term (``gamma`` 0), since it has no hidden states to match the teacher's."""
        given = [self.weights] if self.weights is not None else list(self.grid)
        return [w for w in given if not w.gamma] if lm_free_model(self.student) else given

    @property
    def search_space(self) -> list[Candidate]:
        """The distilled students the search trains: each usable pair of candidate weights, teacher-data share and
        mixup alpha (``distillation/candidates.py``); with both levers at 0, one per weight candidate. With
        ``levers`` set, one per weight candidate: those with a teacher-forecast term with the levers, the rest plain."""
        if self.levers is not None:
            return list(dict.fromkeys(Candidate(w, *self.levers) if usable(w, *self.levers) else Candidate(w)
                                      for w in self.candidates))
        return search_space(self.candidates, parse_levels(self.teacher_data, "teacher_data"),
                            parse_levels(self.mixup_alpha, "mixup_alpha"))

    def backbone_weights(self, role: str) -> str:
        """'pretrained' or 'random' for the teacher or student: its own flag, else --llm_weights."""
        return getattr(self, f"{role}_weights") or self.model.llm_weights


def validate(cfg: PipelineConfig) -> tuple[BackboneRow, Optional[BackboneRow]]:
    """Check names and numbers before anything is loaded; returns the (teacher, student) rows, the student's None
    when it has no language model.

    The declared bounds and choices (``check_config``) and the data settings come first; what no declaration can
    say (backbone rows, a non-empty grid) follows.
    """
    check_config(cfg)
    check_data(replace(cfg.data, horizon_events=cfg.teacher_view == "privileged"))  # the teacher's data covers both
    teacher = _row(cfg.teacher, "--teacher")
    lm_free = f", or a model without a language model: {', '.join(lm_free_students())}"
    student = _row(cfg.student, "--student", lm_free) if lm_free_model(cfg.student) is None else _lm_free_student(cfg)
    if not cfg.candidates:
        raise LLMTimeError("--grid is empty: give at least one ALPHA,BETA,GAMMA candidate")
    _check_levers(cfg)
    return teacher, student


def _check_levers(cfg: PipelineConfig) -> None:
    """Teacher data and mixup: parseable, with a fixed labelled set, and usable with some candidate weights."""
    if not cfg.search_space:
        raise LLMTimeError("--teacher_data and --mixup_alpha above 0 need weights with a teacher-forecast term (beta "
                           "> 0; mixup also gamma 0): add such a candidate, or a 0 among their values")
    if any(c.teacher_data for c in cfg.search_space) and cfg.data.train_draw != "fixed":
        raise LLMTimeError("--teacher_data needs --train_draw fixed: with fresh draws every training window's label "
                           "is drawable, so there is no window beyond the labels")


def lm_free_model(name: str) -> Optional[str]:
    """The registered model a ``--student`` names when it is a model without a language model (DLinear, PatchTST,
    MLP, ...), spelled as registered; None when it names a backbone row."""
    return {k.lower(): k for k in MODELS if not model_uses_llm(k)}.get(name.strip().lower())


def lm_free_students() -> list[str]:
    """The registered models without a language model that gradient training can distil into."""
    return [k for k in MODELS if not model_uses_llm(k) and MODELS[k].gradient_trained]


def _lm_free_student(cfg: PipelineConfig) -> None:
    """Check a student without a language model: it must have something to train, takes no backbone flags, and
    learns from the teacher's forecasts only (one warning line when the grid's hidden-state candidates are skipped)."""
    model = lm_free_model(cfg.student)
    if not MODELS[model].gradient_trained:
        raise LLMTimeError(f"--student {model} is not trained by gradients, so it cannot learn from a teacher; "
                           f"choose a backbone row or one of {', '.join(lm_free_students())}")
    if cfg.student_layers or cfg.student_path:
        raise LLMTimeError(f"--student-layers and --student-path cut or locate a backbone; {model} has no language "
                           "model: leave them out")
    given = [cfg.weights] if cfg.weights is not None else cfg.grid
    skipped = [w for w in given if w.gamma]
    if skipped and len(skipped) == len(given):
        raise LLMTimeError(f"hidden-state distillation does not apply to {model} (no language model, no hidden "
                           "states): give --gamma 0 or a --grid candidate with gamma 0")
    if skipped:
        warnings.warn(f"hidden-state distillation does not apply to {model} (no language model): "
                      f"{len(skipped)} weight candidate(s) with gamma > 0 skipped", stacklevel=3)


def role_label(model: ModelConfig) -> str:
    """What a phase's model is called in rows and progress lines: its backbone row, or the model's name when it has
    no language model."""
    return model.llm_model if model_uses_llm(model.model) else model.model


def _row(name: str, flag: str, also: str = "") -> BackboneRow:
    try:
        return resolve_backbone(name)
    except LLMTimeError:
        raise LLMTimeError(f"unknown {flag} {name!r}; choose one of: {', '.join(backbone_names())}{also}") from None


def patient_groups(cfg: PipelineConfig) -> list[tuple[str, Optional[list[str]]]]:
    """(tag, training patients) per CSV row: one per patient, or one pooled group with --all-patients."""
    found = patient_ids(cfg.data)  # of whichever dataset --data names, in id order
    ids = cfg.data.patients or found
    unknown = [p for p in ids if p not in found]
    if unknown:
        raise LLMTimeError(f"unknown patient id(s) {', '.join(unknown)}; available: {', '.join(found)}")
    if cfg.all_patients:
        return [("all" if cfg.data.patients is None else "+".join(ids), cfg.data.patients)]
    return [(pid, [pid]) for pid in ids]


def _model_config(cfg: PipelineConfig, role: str) -> ModelConfig:
    lm_free = lm_free_model(cfg.student) if role == "student" else None
    if lm_free is not None:
        return replace(cfg.model, model=lm_free)
    model = replace(cfg.model, llm_model=resolve_backbone(getattr(cfg, role)).name,
                    llm_path=getattr(cfg, f"{role}_path"), llm_weights=cfg.backbone_weights(role),
                    llm_layers=getattr(cfg, f"{role}_layers"))
    return replace(model, base=cfg.teacher_base) if role == "teacher" and cfg.teacher_base else model


def baseline_stands_for(cfg: PipelineConfig, candidate: Union[LossWeights, Candidate]) -> bool:
    """Whether the student baseline is already the distilled run of ``candidate``: truth only (1, 0, 0) on the
    labelled windows as they are is the baseline's objective, so with the same epoch budget and no initialisation
    from the baseline the search scores the baseline's run for it instead of training the same student again."""
    candidate = candidate if isinstance(candidate, Candidate) else Candidate(candidate)
    return (candidate.plain and candidate.weights.as_tuple() == (1.0, 0.0, 0.0) and not cfg.init_from_baseline
            and cfg.distill_epochs == cfg.student_epochs)


def phase_configs(cfg: PipelineConfig, tag: str, patients: Optional[list[str]]) -> dict[str, RunConfig]:
    """The RunConfig of each training phase: same data, optimiser, schedule and early stopping; own epoch budget."""
    data = replace(cfg.data, patients=patients)
    folder = Path(cfg.out) / "runs" / f"{safe_name(cfg.data.data)}_{safe_name(tag)}_s{cfg.train.seed}"

    def run(role: str, phase: str, epochs: int) -> RunConfig:
        train = replace(cfg.train, train_epochs=epochs)
        return RunConfig(model_id=f"distill_{safe_name(tag)}", des=phase, checkpoints=str(folder),
                         results_csv=str(Path(cfg.out) / "runs" / PHASE_CSV_NAME),
                         data=data, model=_model_config(cfg, role), train=train)

    teacher = run("teacher", "teacher", cfg.teacher_epochs)
    if cfg.teacher_view == "privileged":  # only the teacher: the students never see the horizon's log
        teacher = replace(teacher, data=replace(data, horizon_events=True))
    return {"teacher": teacher,
            "baseline": run("student", "baseline", cfg.student_epochs),
            "distilled": run("student", "distilled", cfg.distill_epochs)}


def _tag(model: ModelConfig) -> str:
    base = f"-on-{model.base}" if model.base != "none" else ""
    if not model_uses_llm(model.model):
        return safe_name(model.model) + base
    layers = f"-L{model.llm_layers}" if model.llm_layers else ""
    return f"{safe_name(model.llm_model)}{layers}{base}" + ("_random" if model.llm_weights == "random" else "")


def teacher_kind(configs: dict[str, RunConfig]) -> str:
    """The CSV's teacher_kind: 'privileged' when the teacher phase sees the horizon's events, 'ridge' when it
    forecasts on a ridge base, 'privileged+ridge' both, else 'standard'."""
    teacher = configs["teacher"]
    kinds = [kind for kind, on in (("privileged", teacher.data.horizon_events),
                                   ("ridge", teacher.model.base == "ridge")) if on]
    return "+".join(kinds) or "standard"


def run_names(configs: dict[str, RunConfig], candidate: Union[LossWeights, Candidate],
              init_from_baseline: bool) -> dict[str, str]:
    """Run folder names; a privileged teacher's (and the students distilled from it) say so, so the two views of one
    teacher backbone never share a folder (a ridge base is in the model's tag). A distilled run's name ends with its
    candidate's label: the weights, and the teacher-data share and mixup alpha where used."""
    privileged = "-privileged" if configs["teacher"].data.horizon_events else ""
    teacher, student = _tag(configs["teacher"].model) + privileged, _tag(configs["baseline"].model)
    init = "_init" if init_from_baseline else ""
    return {"teacher": f"teacher_{teacher}", "baseline": f"baseline_{student}",
            "distilled": f"distilled_{student}_from_{teacher}_{candidate.label()}{init}"}


def config_key(cfg: PipelineConfig, configs: dict[str, RunConfig]) -> str:
    """A short hash of everything that determines a row, so a finished row is recognised and skipped: each phase's
    run identity (``configs.identity``: its result-relevant settings that differ from their defaults) and what the
    pipeline adds to them.

    ``int8`` is left out on purpose: it only adds the INT8 columns, so rows written before it existed keep their
    key (and are skipped, with those columns empty) rather than being trained again. The teacher-data and mixup
    candidates join the key only when some are searched, for the same reason.
    """
    what = {
        "phases": {k: settings(v) for k, v in configs.items()},
        "candidates": [w.as_tuple() for w in cfg.candidates],
        "layer_map": cfg.layer_map,
        "init_from_baseline": cfg.init_from_baseline,
        "latency": (cfg.latency_repeats, cfg.latency_threads),
    }
    if not all(c.plain for c in cfg.search_space):
        what["search"] = [(c.weights.as_tuple(), c.teacher_data, c.mixup_alpha) for c in cfg.search_space]
    return digest(what, digits=12)


def plan(cfg: PipelineConfig) -> str:
    """The phases and configurations a run would execute, without loading any data or model."""
    teacher, student = validate(cfg)
    groups = patient_groups(cfg)
    t_depth = cfg.teacher_layers or teacher.depth
    if student is None:
        who = f"{lm_free_model(cfg.student)} (student, no language model)"
        layer_map = "layer map: none (the student has no hidden states: output distillation only)"
    else:
        s_depth = cfg.student_layers or student.depth
        pairs = cfg.layer_map or uniform_layer_map(s_depth, t_depth)
        who = f"{student.name} (student, {s_depth} layers, {cfg.backbone_weights('student')} weights)"
        layer_map = (f"layer map (student:teacher, {'explicit' if cfg.layer_map else 'uniform'}): "
                     f"{format_layer_map(pairs)}"
                     + ("" if cfg.layer_map else " (from table depths; recomputed from the loaded backbones)"))
    lines = [
        f"distillation plan: {teacher.name} (teacher, {t_depth} layers, {cfg.backbone_weights('teacher')} weights) "
        f"-> {who}; {cfg.teacher_view} teacher view" + (", ridge base" if cfg.teacher_base == "ridge" else "")
        + f"; {cfg.data.data}; "
        + (f"one pooled model over {groups[0][0]}" if cfg.all_patients else f"{len(groups)} patient(s), one row each"),
        "objective: alpha*MSE(student, truth) + beta*MSE(student, teacher) + gamma*hidden-state MSE (no temperature)",
        "weights: " + (f"given {cfg.weights.as_tuple()}" if cfg.weights else
                       "chosen on validation MSE among " + "; ".join(str(w.as_tuple()) for w in cfg.candidates)),
        *_lever_lines(cfg),
        layer_map,
        f"results: {cfg.csv_path}",
    ]
    for tag, patients in groups:
        configs = phase_configs(cfg, tag, patients)
        lines.append(f"[{tag}]")
        names = run_names(configs, cfg.candidates[0], cfg.init_from_baseline)
        for k, phase in enumerate(("teacher", "baseline", "distilled"), 1):
            rc = configs[phase]
            extra = f" x {_count(cfg)}" if phase == "distilled" else ""
            lines.append(f"  {k}. {phase:<9} {role_label(rc.model)} ({rc.train.train_epochs} epochs){extra} -> "
                         f"{Path(rc.checkpoints) / names[phase]}")
        lines.append("  4. evaluate  CPU latency (batch 1, 64), sizes, RMSE/MAE/Clarke, retention, agreement, persistence"
                     + (", INT8 ONNX student" if cfg.int8 else "") + " -> CSV row")
    first = phase_configs(cfg, *groups[0])
    compact = lambda obj: json.dumps(asdict(obj), separators=(", ", ": "))  # noqa: E731
    lines += [
        "configs of the first row (train_epochs differ per phase as listed above):",
        f"  data:          {compact(first['baseline'].data)}"
        + (" (the teacher's: horizon_events true)" if cfg.teacher_view == "privileged" else ""),
        f"  train:         {compact(first['teacher'].train)}",
        f"  teacher model: {compact(first['teacher'].model)}",
        f"  student model: {compact(first['baseline'].model)}",
    ]
    return "\n".join(lines)


def _lever_lines(cfg: PipelineConfig) -> list[str]:
    """The plan's line on the teacher-data and mixup candidates, when some are searched."""
    space = cfg.search_space
    if all(c.plain for c in space):
        return []
    return [f"teacher data and mixup: searched with the weights on validation MSE, {len(space)} candidates: "
            + "; ".join(c.describe() for c in space)]


def _count(cfg: PipelineConfig) -> str:
    space = cfg.search_space
    return f"{len(space)} weight candidates" if all(c.plain for c in space) else f"{len(space)} candidates"
