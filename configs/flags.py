"""Command-line flags generated from the config dataclasses, so a setting is declared once, on its field.

A field a user may set declares its flag in its metadata (``flag(help, choices=, aliases=, minimum=, ...)`` in
``configs/schema.py``); a field no flag sets says why (``internal``). From that one declaration:

- ``add_config_flags(parser, cls)`` adds ``--<field_name>`` (Time-LLM's underscore spelling, plus the hyphenated twin
  and the declared aliases) with the field's type, default, help and choices; booleans take 0/1/true/false or no
  value (on), lists take comma-separated items, and the declared ``none`` word (``0`` for caps, ``all`` for
  patients) gives None;
- ``config_from_namespace(cls, ns)`` builds the config (a ``RunConfig`` with its sections) from parsed flags, on top
  of a saved configuration if given, and ``check_config`` holds every value to its declared type and bounds, with
  one-line errors naming the flag;
- ``read_config(path, cls)`` reads a run folder's ``config.json`` back (``run_main.py --config``).

Flag names are field names, unique across the sections of a ``RunConfig`` (``--seed`` is ``TrainConfig.seed``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping, Optional

from utils.cli import parse_bool, spellings, split_list
from utils.errors import LLMTimeError

FLAG = "flag"  # metadata key: the field's Flag, or None for a field no flag sets


@dataclass(frozen=True)
class Flag:
    """How a field appears on a command line and which values it accepts."""

    help: str
    choices: tuple = ()
    aliases: tuple[str, ...] = ()  # other spellings in use, without dashes (the hyphenated twin is automatic)
    minimum: Optional[float] = None  # smallest value allowed
    above: Optional[float] = None  # values must exceed this
    below: Optional[float] = None  # values must stay under this
    maximum: Optional[float] = None  # largest value allowed
    why: str = ""  # the reason for the bounds, where the help does not make it plain (shown with a violation)
    none: Optional[str] = None  # the command-line word that means None (e.g. '0' = no cap)


def flag(help: str, **spec: Any) -> dict[str, Flag]:
    """Field metadata declaring its flag: ``field(default=32, metadata=flag("windows per step", minimum=1))``."""
    return {FLAG: Flag(help, **spec)}


def internal(why: str) -> dict[str, Any]:
    """Field metadata of a setting no flag sets (recorded by the code); ``why`` says so where it is declared."""
    return {FLAG: None, "internal": why}


def _flag_fields(cls: type) -> dict[str, tuple[dataclasses.Field, Flag, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, f.metadata[FLAG], hints[f.name]) for f in dataclasses.fields(cls) if f.metadata.get(FLAG)}


def _sections(cls: type) -> dict[str, type]:
    """The fields of ``cls`` that are config sections (dataclasses: RunConfig's data, model, train)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _kind(hint: Any) -> tuple[type, bool]:
    """(the value type: int, float, str, bool or list; whether None is allowed) of a field's annotation."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    return typing.get_origin(hint) or hint, optional


def _converter(spec: Flag, kind: type):
    base = {bool: parse_bool, list: split_list}.get(kind, kind)
    if spec.none is None:
        return base

    def convert(text: str) -> Any:
        if kind is list:
            return None if text.strip().lower() in ("", spec.none) else base(text)
        value = base(text)
        return None if value == base(spec.none) else value

    convert.__name__ = base.__name__  # argparse names the type in its message: "invalid int value"
    return convert


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def add_config_flags(parser: argparse._ActionsContainer, cls: type, only: Optional[Collection[str]] = None,
                     exclude: Collection[str] = (), defaults: Optional[Mapping[str, Any]] = None,
                     notes: Optional[Mapping[str, str]] = None) -> dict[str, argparse.Action]:
    """Add one flag per flag field of ``cls`` to ``parser`` (or an argument group), in field order or ``only``'s.

    ``defaults`` replaces a field's default on this command line (e.g. None: "the model's recipe decides");
    ``notes`` appends entry-point-specific text to a field's help (what that default means here). Returns the
    actions by field name, for the caller to adjust (``required``).
    """
    specs = _flag_fields(cls)
    defaults, notes = dict(defaults or {}), dict(notes or {})
    unknown = (set(only or ()) | set(exclude) | set(defaults) | set(notes)) - set(specs)
    if unknown:
        raise ValueError(f"{cls.__name__} has no flag field(s) {sorted(unknown)}")
    names = [n for n in (only if only is not None else specs) if n not in exclude]
    actions = {}
    for name in names:
        f, spec, hint = specs[name]
        kind, _ = _kind(hint)
        text = spec.help + (f"; {notes[name]}" if name in notes else "")
        kwargs: dict[str, Any] = dict(dest=name, default=defaults.get(name, _default(f)), help=text.replace("%", "%%"))
        if kind is bool:
            kwargs.update(type=parse_bool, nargs="?", const=True, metavar="0|1")
        else:
            kwargs["type"] = _converter(spec, kind)
        if spec.choices:
            kwargs["choices"] = spec.choices
        actions[name] = parser.add_argument(*spellings(name, *spec.aliases), **kwargs)
    return actions


def config_from_namespace(cls: type, ns: argparse.Namespace, base: Any = None,
                          names: Optional[Collection[str]] = None) -> Any:
    """A checked ``cls`` (with its sections) whose flag fields take the namespace's values.

    ``base``: start from this configuration (a saved run's) instead of the defaults. ``names``: take only these
    fields from the namespace (e.g. the flags actually given, ``utils.cli.given_flags``); None: every one it holds.
    """
    cfg = _build(cls, vars(ns), base, names)
    check_config(cfg)
    return cfg


def _build(cls: type, values: Mapping[str, Any], base: Any, names: Optional[Collection[str]]) -> Any:
    kwargs = {name: _build(section, values, getattr(base, name, None), names)
              for name, section in _sections(cls).items()}
    kwargs.update({name: values[name] for name in _flag_fields(cls)
                   if name in values and (names is None or name in names)})
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def _expected(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "0 or 1", list: "a list of ids"}[kind]


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bounds(spec: Flag) -> str:
    """The declared range as a user reads it: '>= 1', '> 0', 'in [0, 1)', 'in [0, 4294967295]'; '' for none."""
    low = f"[{_number(spec.minimum)}" if spec.minimum is not None else (
        f"({_number(spec.above)}" if spec.above is not None else None)
    high = f"{_number(spec.below)})" if spec.below is not None else (
        f"{_number(spec.maximum)}]" if spec.maximum is not None else None)
    if low and high:
        return f"in {low}, {high}"
    if low:
        return (">= " if low[0] == "[" else "> ") + low[1:]
    if high:
        return ("<= " if high[-1] == "]" else "< ") + high[:-1]
    return ""


def _outside(spec: Flag, value: Any) -> bool:
    return ((spec.minimum is not None and value < spec.minimum) or (spec.above is not None and value <= spec.above)
            or (spec.below is not None and value >= spec.below)
            or (spec.maximum is not None and value > spec.maximum))


def _not_utf8(value: Any) -> bool:
    """Whether a text value (or an item of a list) cannot be written as UTF-8: a command-line argument with bytes
    that are not UTF-8 arrives with them as lone surrogates, which config.json, results.csv and the terminal refuse
    only after the run has trained."""
    texts = value if isinstance(value, list) else [value]
    try:
        for text in texts:
            if isinstance(text, str):
                text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_config(cfg: Any) -> None:
    """Every flag field of ``cfg`` (and of its sections) holds a value of its type, among its choices and within its
    bounds, numbers finite and text UTF-8; the first that does not is a one-line ``LLMTimeError`` naming its flag."""
    for name in _sections(type(cfg)):
        check_config(getattr(cfg, name))
    for name, (_, spec, hint) in _flag_fields(type(cfg)).items():
        value = getattr(cfg, name)
        kind, optional = _kind(hint)
        if value is None and optional:
            continue
        if not _fits(value, kind):
            raise LLMTimeError(f"--{name} {value!r}: expected {_expected(kind)}")
        if _not_utf8(value):
            raise LLMTimeError(f"--{name} {value!r} holds bytes that are not UTF-8 text, which the run's outputs "
                               "cannot record: retype it in UTF-8")
        if spec.choices and value not in spec.choices:
            raise LLMTimeError(f"--{name} {value!r}: choose one of {', '.join(map(str, spec.choices))}")
        finite = not isinstance(value, float) or math.isfinite(value)  # NaN passes every comparison below
        if not finite or _outside(spec, value):
            what = " ".join(filter(None, ("" if finite else "a finite number", _bounds(spec))))
            why = f" ({spec.why})" if spec.why else ""
            raise LLMTimeError(f"--{name} must be {what}{why}, got {value}")


def read_config(path: str, cls: type) -> Any:
    """The checked configuration a run saved: ``path`` is its ``config.json`` or the run folder holding it."""
    file = Path(path) / "config.json" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise LLMTimeError(f"--config {path}: no such file; pass a run folder or its config.json")
    try:
        saved = json.loads(file.read_text())
        if not isinstance(saved, dict) or not all(isinstance(saved.get(s, {}), dict) for s in _sections(cls)):
            raise ValueError("not a JSON object with data, model and train sections")
        cfg = cls.from_dict(saved)
    except (ValueError, TypeError) as e:
        raise LLMTimeError(f"--config {file} is not a run's config.json ({e})") from None
    try:
        check_config(cfg)
    except LLMTimeError as e:
        raise LLMTimeError(f"--config {file} holds a value no run accepts ({e}): correct it in the file") from None
    return cfg
