"""Fuzzing the OhioT1DM reader: any mutation of a valid file either parses or raises LLMTimeError, nothing else.

Mutations: byte flips, truncation, attribute values replaced, elements deleted, timestamps garbled, and damage to
the gzip stream of a compressed copy. A KeyError, ValueError or IndexError escaping the reader would reach a user
as a traceback, so it fails here.
"""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import patient_xml
from data_provider.ohio import load_patient, read_xml
from utils.errors import LLMTimeError

# 200 random files take seconds: the reader's own tests (test_ohio.py) stay in the quick loop, this sweep does not.
pytestmark = pytest.mark.slow

# Off-the-clock readings (the seconds vary) and one of every kind of event field the reader parses.
VALID = patient_xml(
    "7",
    [f"07-12-2021 {1 + i // 12:02d}:{(i % 12) * 5:02d}:{(7 * i) % 60:02d}" for i in range(30)],
    [100 + 3 * i for i in range(30)],
    attrs=dict(weight="99", insulin_type="Novalog"),
    events="""\t<finger_stick>
\t\t<event ts="07-12-2021 01:21:00" value="99"/>
\t</finger_stick>
\t<basal>
\t\t<event ts="07-12-2021 00:00:00" value="0.8"/>
\t\t<event ts="07-12-2021 02:00:00" value="1.1"/>
\t</basal>
\t<temp_basal>
\t\t<event ts_begin="07-12-2021 01:40:00" ts_end="07-12-2021 01:50:00" value="0"/>
\t</temp_basal>
\t<bolus>
\t\t<event ts_begin="07-12-2021 01:18:00" ts_end="07-12-2021 01:18:00" type="normal" dose="2.5" bwz_carb_input="30"/>
\t</bolus>
\t<meal>
\t\t<event ts="07-12-2021 01:16:00" type="Breakfast" carbs="30"/>
\t</meal>
\t<hypo_event>
\t\t<event ts="07-12-2021 01:35:00">
\t\t\t<symptom name="shaky"/>
\t\t</event>
\t</hypo_event>
\t<illness>
\t\t<event ts_begin="07-12-2021 00:00:00" ts_end="" type="cold" description=""/>
\t</illness>
""",
).encode()

ATTRIBUTE = re.compile(rb'(\w+)="([^"]*)"')
TIMESTAMP = re.compile(rb"\d\d-\d\d-\d\d\d\d \d\d:\d\d:\d\d")
LINES = VALID.splitlines(keepends=True)
N_ATTRS = len(ATTRIBUTE.findall(VALID))
N_STAMPS = len(TIMESTAMP.findall(VALID))
garbage = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"<>&'), max_size=12)


def _replace_nth(pattern: re.Pattern, data: bytes, n: int, new: bytes, group: int = 0) -> bytes:
    """Replace the n-th match (modulo the matches left after earlier replacements)."""
    matches = list(pattern.finditer(data))
    if not matches:
        return data
    match = matches[n % len(matches)]
    return data[: match.start(group)] + new + data[match.end(group):]


@st.composite
def mutated(draw) -> tuple[bytes, str]:
    """(file bytes, file suffix) for one random mutation of VALID."""
    kind = draw(st.sampled_from(["flip", "truncate", "attribute", "delete", "timestamp", "gzip"]))
    data = VALID
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            data = data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1:]
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "attribute":
        for _ in range(draw(st.integers(1, 4))):
            value = draw(st.one_of(garbage, st.sampled_from(["", "-1", "1e309", "nan", "0", "99999999", "inf"])))
            data = _replace_nth(ATTRIBUTE, data, draw(st.integers(0, N_ATTRS - 1)), value.encode(), group=2)
    elif kind == "delete":
        lines = list(LINES)
        for _ in range(draw(st.integers(1, 6))):
            del lines[draw(st.integers(0, len(lines) - 1))]
        data = b"".join(lines)
    elif kind == "timestamp":
        for _ in range(draw(st.integers(1, 4))):
            stamp = draw(st.one_of(garbage, st.sampled_from(
                ["2021-12-07 01:00:00", "31-02-2021 01:00:00", "07-12-2021 25:00:00", "07-12-2021", "07/12/2021 01:00",
                 "12-07-2021 01:00:00", "07-12-1850 01:00:00", "07-12-2300 01:00:00"])))
            data = _replace_nth(TIMESTAMP, data, draw(st.integers(0, N_STAMPS - 1)), stamp.encode())
    else:  # damage inside the compressed stream
        damaged = bytearray(gzip.compress(VALID))
        if draw(st.booleans()):
            damaged = damaged[: draw(st.integers(0, len(damaged) - 1))]
        for _ in range(draw(st.integers(0, 4)) if damaged else 0):
            damaged[draw(st.integers(0, len(damaged) - 1))] = draw(st.integers(0, 255))
        return bytes(damaged), draw(st.sampled_from([".xml.gz", ".xml"]))  # the reader goes by content, too
    if draw(st.booleans()):
        return gzip.compress(data), ".xml.gz"  # intact gzip of a damaged file
    return data, ".xml"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_reader_parses_or_raises_llmtime_error(folder, case):
    data, suffix = case
    path = folder / f"7-ws-training{suffix}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data-quality notes are expected for damaged values
        try:
            read_xml(path)
            record = load_patient({"train": path}, "7")
        except LLMTimeError:
            return
    assert len(record.train.grid) >= 1 and record.train.grid.index.is_monotonic_increasing
