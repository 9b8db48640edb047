"""A run's identity: one hash over the settings that decide what it computes, for run folders, the reuse of finished
runs, comparison cells, sweep points and distillation rows alike.

Two rules make it stable:

- only result-relevant settings count. A field that says where outputs go, what a run is called or how fast it goes
  declares so once, in its metadata (``OUTSIDE_IDENTITY``: ``identity=False``), and no identity sees it, so a bigger
  evaluation batch or another checkpoints folder never retrains a finished run;
- only values that differ from their field's default count. Adding a field with a default therefore renames no
  finished run, and a saved ``config.json`` that predates a field reads as that field's default. This holds as long
  as the default computes what runs did before the field existed: a field whose default changes results must say
  so in the runs it renames (e.g. by defaulting to the old behaviour), or runs recorded before it are taken for runs
  with the new default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

IDENTITY = "identity"  # field metadata key: False = the field never changes what a run computes
OUTSIDE_IDENTITY = {IDENTITY: False}  # merged into a field's metadata: ``metadata=OUTSIDE_IDENTITY | flag(...)``


def plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, paths strings), so saved and wanted values compare."""
    return json.loads(json.dumps(obj, default=str))


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def settings(cfg: Any) -> dict[str, Any]:
    """'section.field' -> value (as JSON reads it back) of every result-relevant field of the dataclass ``cfg`` whose
    value differs from its default; a section (a field holding a dataclass) is compared field by field with its own
    class's defaults. A field without a default always counts."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.metadata.get(IDENTITY, True) is False:
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update({f"{f.name}.{key}": v for key, v in settings(value).items()})
        elif _default(f) is dataclasses.MISSING or plain(value) != plain(_default(f)):
            out[f.name] = plain(value)
    return out


def digest(value: Any, digits: int = 10) -> str:
    """The first ``digits`` hex digits of the SHA-1 of ``value`` as sorted JSON."""
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:digits]


def identity(cfg: Any, digits: int = 10) -> str:
    """The identity of the run configuration ``cfg``: a hash of ``settings(cfg)``."""
    return digest(settings(cfg), digits)
