"""The OhioT1DM reader: every field, gzip, day-first timestamps, grid alignment, gaps, folder layouts, errors."""

import numpy as np
import pandas as pd
import pytest

from builders import cgm_times, write_file, write_patient_xml
from data_provider.ohio import FIELDS, discover, load_cohort, read_xml
from utils.errors import LLMTimeError

XML = """<?xml version="1.0" encoding="UTF-8"?>
<patient id="{pid}" weight="99" insulin_type="Novalog">
\t<glucose_level>
\t\t<event ts="07-12-2021 01:17:00" value="101"/>
\t\t<event ts="07-12-2021 01:22:00" value="98"/>
\t\t<event ts="07-12-2021 01:27:10" value="104"/>
\t\t<event ts="07-12-2021 01:28:40" value="999999"/>
\t\t<event ts="07-12-2021 01:47:00" value="120"/>
\t\t<event ts="07-12-2021 01:52:00" value="125"/>
\t</glucose_level>
\t<finger_stick>
\t\t<event ts="07-12-2021 01:21:00" value="99"/>
\t</finger_stick>
\t<basal>
\t\t<event ts="07-12-2021 00:00:00" value="0.8"/>
\t\t<event ts="07-12-2021 01:30:00" value="1.1"/>
\t</basal>
\t<temp_basal>
\t\t<event ts_begin="07-12-2021 01:40:00" ts_end="07-12-2021 01:50:00" value="0"/>
\t</temp_basal>
\t<bolus>
\t\t<event ts_begin="07-12-2021 01:18:00" ts_end="07-12-2021 01:18:00" type="normal" dose="2.5" bwz_carb_input="30"/>
\t\t<event ts_begin="07-12-2021 01:19:00" ts_end="07-12-2021 01:19:00" type="normal" dose="0.5" bwz_carb_input="0"/>
\t</bolus>
\t<meal>
\t\t<event ts="07-12-2021 01:16:00" type="Breakfast" carbs="30"/>
\t</meal>
\t<sleep>
\t\t<event ts_begin="07-12-2021 00:00:00" ts_end="07-12-2021 01:00:00" quality="2"/>
\t</sleep>
\t<work>
\t\t<event ts_begin="08-12-2021 09:00:00" ts_end="08-12-2021 17:00:00" intensity="5"/>
\t</work>
\t<stressors>
\t\t<event ts="07-12-2021 01:30:00" type="" description="deadline"/>
\t</stressors>
\t<hypo_event>
\t\t<event ts="07-12-2021 01:35:00">
\t\t\t<symptom name="shaky"/>
\t\t</event>
\t</hypo_event>
\t<illness>
\t\t<event ts_begin="07-12-2021 00:00:00" ts_end="" type="cold" description=""/>
\t</illness>
\t<exercise>
\t\t<event ts="07-12-2021 01:40:00" intensity="4" type="walk" duration="30" competitive=""/>
\t</exercise>
\t<basis_heart_rate>
\t\t<event ts="07-12-2021 01:17:00" value="70"/>
\t</basis_heart_rate>
\t<basis_gsr>
\t\t<event ts="07-12-2021 01:17:00" value="0.0012"/>
\t</basis_gsr>
\t<basis_skin_temperature>
\t\t<event ts="07-12-2021 01:17:00" value="88.5"/>
\t</basis_skin_temperature>
\t<basis_air_temperature>
\t\t<event ts="07-12-2021 01:17:00" value="80.1"/>
\t</basis_air_temperature>
\t<basis_steps>
\t\t<event ts="07-12-2021 01:17:00" value="12"/>
\t</basis_steps>
\t<basis_sleep>
\t\t<event tbegin="07-12-2021 00:00:00" tend="07-12-2021 01:00:00" quality="80" type="sleep"/>
\t</basis_sleep>
\t<acceleration>
\t\t<event ts="07-12-2021 01:17:00" value="1.01"/>
\t</acceleration>
</patient>
"""


def _test_file(pid):
    """A testing file that starts after the training file ends (continuous release)."""
    return (
        XML.replace("07-12-2021", "09-12-2021").replace("08-12-2021", "10-12-2021").replace("{pid}", pid)
    )


def test_every_field_is_read_with_types(tmp_path):
    path = write_file(tmp_path / "559-ws-training.xml", XML.replace("{pid}", "559"))
    attrs, ev = read_xml(path)
    assert attrs == {"id": "559", "weight": "99", "insulin_type": "Novalog"}
    assert set(FIELDS) <= set(ev)
    for name in FIELDS:
        assert len(ev[name]) >= 1, name
    assert ev["glucose_level"]["ts"].iloc[0] == pd.Timestamp("2021-12-07 01:17:00")  # day first
    assert ev["glucose_level"]["value"].iloc[0] == 101
    assert ev["bolus"]["dose"].sum() == pytest.approx(3.0)
    assert ev["bolus"]["bwz_carb_input"].iloc[0] == 30
    assert ev["bolus"]["type"].iloc[0] == "normal"
    assert ev["meal"]["carbs"].iloc[0] == 30 and ev["meal"]["type"].iloc[0] == "Breakfast"
    assert ev["temp_basal"]["ts_end"].iloc[0] == pd.Timestamp("2021-12-07 01:50:00")
    assert ev["basis_sleep"]["tbegin"].iloc[0] == pd.Timestamp("2021-12-07 00:00:00")
    assert ev["work"]["ts_begin"].iloc[0] == pd.Timestamp("2021-12-08 09:00:00")
    assert ev["exercise"]["duration"].iloc[0] == 30
    assert ev["hypo_event"]["symptom"].iloc[0] == "shaky"
    assert ev["basis_gsr"]["value"].iloc[0] == pytest.approx(0.0012)


def test_grid_alignment_gaps_and_covariates(tmp_path):
    write_file(tmp_path / "559-ws-training.xml", XML.replace("{pid}", "559"))
    with pytest.warns(UserWarning, match="rejected 1 glucose"):
        rec = load_cohort(tmp_path)["559"]
    g = rec.train.grid
    assert g.index.freq == pd.Timedelta(minutes=5)
    assert g.index[0] == pd.Timestamp("2021-12-07 01:15") and g.index[-1] == pd.Timestamp("2021-12-07 01:50")
    # 01:17 -> 01:15, 01:22 -> 01:20, 01:27:10 -> 01:25, 01:47 -> 01:45, 01:52 -> 01:50; the gap stays NaN
    expected = [101, 98, 104, np.nan, np.nan, np.nan, 120, 125]
    np.testing.assert_array_equal(g["glucose"].to_numpy(), expected)
    assert any("rejected 1 glucose" in n for n in rec.notes)
    # basal 0.8 until 01:30, then 1.1, temp basal 0 over [01:40, 01:50)
    np.testing.assert_allclose(g["basal"].to_numpy(), [0.8, 0.8, 0.8, 1.1, 1.1, 0.0, 0.0, 1.1])
    # events go to the first mark at or after them (never seen before they happened)
    assert g["bolus"].loc["2021-12-07 01:20"] == pytest.approx(3.0)
    assert g["carbs"].loc["2021-12-07 01:20"] == 30
    assert g["finger_stick"].loc["2021-12-07 01:25"] == 99


def test_two_readings_in_one_slot_keep_the_closest(tmp_path):
    text = XML.replace("{pid}", "1").replace(
        '<event ts="07-12-2021 01:28:40" value="999999"/>', '<event ts="07-12-2021 01:24:00" value="50"/>'
    )
    write_file(tmp_path / "1-ws-training.xml", text)
    with pytest.warns(UserWarning, match="share a 5-minute slot"):
        g = load_cohort(tmp_path)["1"].train.grid
    assert g["glucose"].loc["2021-12-07 01:25"] == 50  # 01:24 is closer to 01:25 than 01:27:10


def test_gzip_release_folders_and_flat_layout(tmp_path):
    rel = tmp_path / "release"
    write_file(rel / "OhioT1DM-training" / "559-ws-training.xml", XML.replace("{pid}", "559"))
    write_file(rel / "OhioT1DM-testing" / "559-ws-testing.xml", _test_file("559"))
    write_file(rel / "OhioT1DM-2-training" / "540-ws-training.xml.gz", XML.replace("{pid}", "540"), gz=True)
    write_file(rel / "OhioT1DM-2-testing" / "540-ws-testing.xml.gz", _test_file("540"), gz=True)
    found = discover(rel)
    assert set(found) == {"559", "540"} and set(found["540"]) == {"train", "test"}
    with pytest.warns(UserWarning):
        recs = load_cohort(rel)
    assert list(recs) == ["540", "559"]
    assert recs["540"].test.grid.index[0] == pd.Timestamp("2021-12-09 01:15")
    np.testing.assert_array_equal(recs["540"].train.grid["glucose"], recs["559"].train.grid["glucose"])
    flat = tmp_path / "flat"
    write_file(flat / "559-ws-training.xml", XML.replace("{pid}", "559"))
    assert set(discover(flat)) == {"559"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.replace("07-12-2021 01:22:00", "2021-12-07 01:22:00"), "DD-MM-YYYY"),
        (lambda t: t.replace('value="98"', 'value="abc"'), "not numbers"),
        (lambda t: t[: len(t) // 2], "not well-formed"),
        (lambda t: t.replace("<patient ", "<person ").replace("</patient>", "</person>"), "expected <patient>"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, mutate, message):
    write_file(tmp_path / "7-ws-training.xml", mutate(XML.replace("{pid}", "7")))
    with pytest.raises(LLMTimeError, match=message):
        load_cohort(tmp_path)


def test_fake_gzip_unknown_patient_and_empty_folder(tmp_path):
    write_file(tmp_path / "7-ws-training.xml.gz", XML.replace("{pid}", "7"))
    with pytest.raises(LLMTimeError, match="not gzip"):
        load_cohort(tmp_path)
    with pytest.raises(LLMTimeError, match="unknown patient id"):
        load_cohort(tmp_path, ["8"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMTimeError, match="no <id>-ws-training"):
        discover(tmp_path / "empty")
    with pytest.raises(LLMTimeError, match="does not exist"):
        discover(tmp_path / "missing")


@pytest.mark.slow
def test_ohio_scale_cohort_parses_completely(tmp_path):
    """12 Ohio-size patients (~135k training + 32k test CGM points) parse with every reading on the grid."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2021-12-07 00:03:21")
    for k, (n_train, n_test) in enumerate([(11_300, 2_700)] * 12):
        for part, n, offset in (("training", n_train, 0), ("testing", n_test, n_train)):
            write_patient_xml(tmp_path, str(k), part, cgm_times(start, n, offset), rng.integers(40, 400, n),
                              attrs=dict(weight="99", insulin_type="Humalog"), gz=True)
    recs = load_cohort(tmp_path)
    assert sum(r.train.grid["glucose"].notna().sum() for r in recs.values()) == 12 * 11_300
    assert sum(r.test.grid["glucose"].notna().sum() for r in recs.values()) == 12 * 2_700
