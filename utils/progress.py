"""Progress bars, and the one switch that turns them all off: ``LLMTIME_NO_BARS=1``.

Tests, CI and the scripts that read a run's own output set it, since bars redrawn on stderr bury what a run says.
Every bar in the project goes through ``progress`` so the switch is read in one place.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from tqdm.auto import tqdm

NO_BARS = "LLMTIME_NO_BARS"


def bars_enabled() -> bool:
    """Whether progress bars show: unless ``LLMTIME_NO_BARS`` is 1 (read at each call, so a test may set it)."""
    return os.environ.get(NO_BARS) != "1"


def progress(iterable: Optional[Iterable] = None, show: bool = True, **tqdm_kwargs) -> tqdm:
    """A tqdm bar over ``iterable`` (or one updated by hand, given ``total``), hidden when bars are off or ``show``
    is False (a process other than the main one of a launched job)."""
    return tqdm(iterable, disable=not (show and bars_enabled()), **tqdm_kwargs)
