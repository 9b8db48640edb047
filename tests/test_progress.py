"""Progress bars: ``LLMTIME_NO_BARS=1`` hides every one, and every bar goes through ``utils.progress``."""

import io
import re

from test_architecture import module_files
from utils.progress import bars_enabled, progress


def test_the_switch_hides_bars_and_a_process_other_than_the_main_one_shows_none(monkeypatch):
    monkeypatch.setenv("LLMTIME_NO_BARS", "1")
    assert not bars_enabled() and progress(range(3)).disable
    monkeypatch.delenv("LLMTIME_NO_BARS")
    assert bars_enabled() and not progress(range(3), file=io.StringIO()).disable
    assert progress(range(3), show=False).disable
    assert list(progress(range(3), show=False)) == [0, 1, 2]


def test_no_module_builds_a_bar_of_its_own():
    """A tqdm bar built anywhere else would ignore the switch (writing a line with ``tqdm.write`` is fine)."""
    direct = sorted(name for name, path in module_files().items()
                    if name != "utils.progress" and re.search(r"\btqdm\(", path.read_text()))
    assert not direct, f"tqdm bars outside utils.progress: {', '.join(direct)}"
