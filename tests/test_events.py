"""Meals, insulin and basal as prompt text: the published curves, the wording, no look-ahead, the token assembly."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from builders import cgm_times, sine_glucose, write_patient_xml
from data_provider.data_factory import COVARIATES, build_splits
from data_provider.events import (
    EVENT_WORDS,
    cob_fraction,
    event_text,
    event_texts,
    iob_fraction,
    summarize_events,
)
from configs import DataConfig
from models.prompt import PromptBuilder, render
from utils.errors import LLMTimeError

L = 72


def _window(length=L, basal=0.8):
    """Unscaled [1, length] basal, bolus and carbs windows (basal constant)."""
    return torch.full((1, length), basal, dtype=torch.float64), torch.zeros(1, length), torch.zeros(1, length)


def _text(basal, bolus, carbs):
    return event_text(summarize_events(basal, bolus, carbs), 0)


def test_insulin_on_board_follows_the_exponential_model():
    assert iob_fraction(torch.tensor([0.0, 360.0, 500.0])).tolist() == [1.0, 0.0, 0.0]
    # By hand from the formula with tp = 75, td = 360:
    # tau = 75 * (285/360) / (210/360) = 101.7857, a = 2 tau / 360 = 0.565476, S = 1 / (1 - a + (1 + a) e^(-360/tau))
    tau = 75 * 285 / 210
    a = 2 * tau / 360
    s = 1 / (1 - a + (1 + a) * math.exp(-360 / tau))
    by_hand = 1 - s * (1 - a) * ((120**2 / (tau * 360 * (1 - a)) - 120 / tau - 1) * math.exp(-120 / tau) + 1)
    assert by_hand == pytest.approx(0.44975, abs=1e-5)
    assert float(iob_fraction(torch.tensor([120.0]))) == pytest.approx(by_hand, abs=1e-12)
    # The curve's activity (insulin used per minute) peaks at the 75-minute peak time.
    remaining = iob_fraction(torch.arange(0.0, 361.0))
    assert int(torch.argmax(remaining[:-1] - remaining[1:])) in (74, 75)
    assert bool((remaining[1:] <= remaining[:-1]).all())


def test_carbs_on_board_is_linear_over_180_minutes():
    assert (40 * cob_fraction(torch.tensor([0.0, 60.0, 180.0, 300.0]))).tolist() == pytest.approx(
        [40.0, 26.6667, 0.0, 0.0], abs=1e-4
    )


def test_meal_and_bolus_20_minutes_before_the_origin():
    basal, bolus, carbs = _window()
    carbs[0, L - 5], bolus[0, L - 5] = 40.0, 4.0  # index L-1 is the origin: 4 steps = 20 min before it
    # IOB 4.0 x 0.9660 = 3.86 U; COB 40 x (1 - 20/180) = 35.6 g
    assert _text(basal, bolus, carbs) == (
        "meal 40 g 20 min ago; bolus 4.0 U 20 min ago; basal 0.8 U/h; insulin on board 3.9 U; carbs on board 36 g"
    )


def test_nothing_logged_and_unlogged_basal():
    basal, bolus, carbs = _window(basal=0.0)
    basal[0, -1], carbs[0, 3], bolus[0, 5] = -1e-7, 1e-6, -1e-7  # float noise of filled, scaled, unscaled zeros
    assert _text(basal, bolus, carbs) == (
        "no meals or boluses logged; basal 0.0 U/h; insulin on board 0.0 U; carbs on board 0 g"
    )


def test_terse_words_state_the_same_facts_in_fewer_tokens(wordpiece_tokenizer):
    basal, bolus, carbs = _window()
    carbs[0, L - 5], bolus[0, L - 5] = 40.0, 4.0
    summary = summarize_events(basal, bolus, carbs)
    assert event_text(summary, 0, "terse") == "meal 40 20 min; bolus 4.0 20 min; basal 0.8; insulin 3.9; carbs 36"
    nothing = summarize_events(*_window(basal=0.0))
    assert event_text(nothing, 0, "terse") == "none; basal 0.0; insulin 0.0; carbs 0"
    old_only = _window()
    old_only[2][0, 0] = 30.0  # a meal 355 min before the origin: logged, but outside the listed 4 hours
    assert event_text(summarize_events(*old_only), 0, "terse").startswith("none in 4 h; ")
    assert event_texts(summary, "terse") == [event_text(summary, 0, "terse")]
    for s in (summary, nothing):
        full, terse = (len(wordpiece_tokenizer(event_text(s, 0, w), add_special_tokens=False)["input_ids"])
                       for w in EVENT_WORDS)
        assert terse < 0.7 * full
    with pytest.raises(ValueError, match="event words"):
        event_text(summary, 0, "brief")


def test_only_the_two_most_recent_events_within_4_hours_are_listed():
    basal, bolus, carbs = _window()
    for steps_ago, grams in ((6, 30.0), (12, 20.0), (24, 10.0), (60, 50.0)):  # 30, 60, 120 and 300 min ago
        carbs[0, L - 1 - steps_ago] = grams
    bolus[0, L - 1 - 60] = 2.0
    text = _text(basal, bolus, carbs)
    # the 10 g meal 120 min ago is not listed but still on board: 30 x 5/6 + 20 x 4/6 + 10 x 2/6 = 41.7 g
    assert text == (
        "meal 30 g 30 min ago; meal 20 g 60 min ago; basal 0.8 U/h; insulin on board 0.0 U; carbs on board 42 g"
    )
    basal, bolus, carbs = _window()
    carbs[0, L - 1 - 60] = 50.0  # 300 min ago: in the window, older than the listed span
    assert _text(basal, bolus, carbs).startswith("no meals or boluses in last 4 h; basal 0.8 U/h")


def test_an_event_after_the_origin_never_appears():
    basal, bolus, carbs = _window(length=200)
    carbs[0, 150], bolus[0, 150] = 40.0, 4.0
    windows = torch.stack([torch.cat([basal, bolus, carbs])[:, o - L + 1 : o + 1] for o in (149, 150, 154)])
    texts = event_texts(summarize_events(windows[:, 0], windows[:, 1], windows[:, 2]))
    assert texts[0] == "no meals or boluses logged; basal 0.8 U/h; insulin on board 0.0 U; carbs on board 0 g"
    assert texts[1].startswith("meal 40 g 0 min ago; bolus 4.0 U 0 min ago;")
    assert texts[2].startswith("meal 40 g 20 min ago; bolus 4.0 U 20 min ago;")


CHANNELS = ("glucose", "basal", "bolus", "carbs", "carried")  # a trailing extra channel is ignored
MEAN, STD = np.array([140.0, 0.9, 0.1, 1.2, 0.1]), np.array([40.0, 0.3, 0.6, 6.0, 0.3])


def _builder(tokenizer, events=True, channels=CHANNELS, event_words="full"):
    return PromptBuilder(tokenizer, "CGM readings of a person with type 1 diabetes.", L, 12, 3, (MEAN[0], STD[0]),
                         events=events, channels=channels, scaler_mean=MEAN, scaler_std=STD, event_words=event_words)


def _scaled_batch():
    gen = torch.Generator().manual_seed(0)
    raw = torch.zeros(4, L, 5, dtype=torch.float64)
    raw[..., 0] = 120 + 40 * torch.sin(torch.arange(L) / 9.0 + torch.rand(4, 1, generator=gen) * 6)
    raw[..., 1] = torch.tensor([0.8, 0.0, 1.25, 0.45])[:, None]
    raw[0, L - 5, 3], raw[0, L - 5, 2] = 40.0, 4.0
    raw[2, 10, 3], raw[2, 40, 2], raw[2, 60, 2] = 75.0, 7.35, 0.5
    raw[3, 50, 3] = 12.0
    return ((raw - torch.as_tensor(MEAN)) / torch.as_tensor(STD)).float()


def test_prompt_tokens_with_events_equal_whole_string_tokenisation(wordpiece_tokenizer):
    builder = _builder(wordpiece_tokenizer)
    x = _scaled_batch()
    ids, lengths = builder(x)
    stats = builder.statistics(x)
    texts = [render(builder.pieces, stats, i) for i in range(len(x))]
    assert "; meal 40 g 20 min ago; bolus 4.0 U 20 min ago; basal 0.8 U/h; insulin on board 3.9 U;" in texts[0]
    assert texts[1].endswith("; no meals or boluses logged; basal 0.0 U/h; insulin on board 0.0 U; carbs on board 0 g")
    for i, text in enumerate(texts):
        expected = wordpiece_tokenizer(text)["input_ids"]
        assert ids[i, : lengths[i]].tolist() == expected
        assert not ids[i, lengths[i] :].any()
    # The constant prefix (cached for causal backbones) is the one the prompt without events has, and that prompt
    # (the glucose-only path) still assembles as whole-string tokenisation.
    plain = _builder(wordpiece_tokenizer, events=False)
    plain_ids, plain_lengths = plain(x)
    for i in range(len(x)):
        expected = wordpiece_tokenizer(render(plain.pieces, plain.statistics(x), i))["input_ids"]
        assert plain_ids[i, : plain_lengths[i]].tolist() == expected
    assert builder.constant_length == plain.constant_length
    assert torch.equal(builder.parts[0][0], plain.parts[0][0])
    assert render(builder.pieces, stats, 0).startswith(render(plain.pieces, plain.statistics(x), 0) + "; meal")
    # terse words: the same assembly, whole-string tokenisation again, fewer tokens
    terse = _builder(wordpiece_tokenizer, event_words="terse")
    terse_ids, terse_lengths = terse(x)
    terse_texts = [render(terse.pieces, terse.statistics(x), i) for i in range(len(x))]
    assert terse_texts[1].endswith("; none; basal 0.0; insulin 0.0; carbs 0")
    for i, text in enumerate(terse_texts):
        assert terse_ids[i, : terse_lengths[i]].tolist() == wordpiece_tokenizer(text)["input_ids"]
    assert (terse_lengths < lengths).all()
    with pytest.raises(LLMTimeError, match="--event_words"):
        _builder(wordpiece_tokenizer, event_words="brief")


def test_events_without_the_covariate_channels_are_user_errors(wordpiece_tokenizer):
    with pytest.raises(LLMTimeError, match="needs the basal, bolus, carbs input channels: run with --features MS"):
        _builder(wordpiece_tokenizer, channels=("glucose",))
    with pytest.raises(ValueError, match="needs scaler_mean and scaler_std"):  # a caller bug, not a user error
        PromptBuilder(wordpiece_tokenizer, None, L, 12, 3, (MEAN[0], STD[0]), events=True, channels=CHANNELS)
    builder = _builder(wordpiece_tokenizer)
    with pytest.raises(LLMTimeError, match="inputs have 1 channels: run with --features MS"):
        builder(_scaled_batch()[..., :1])
    x = _scaled_batch()
    x[1, 3, 2] = float("nan")
    with pytest.raises(LLMTimeError, match="contain NaN"):
        builder(x)


def _write_xml(folder, part, start, n, seed, events=""):
    """Patient 7's file: off-the-clock 5-minute CGM readings plus the given event fields."""
    values = sine_glucose(n, 130, 40, 18.0, 3, np.random.default_rng(seed))
    start = pd.Timestamp(start) + pd.Timedelta(seconds=83)
    write_patient_xml(folder, "7", part, cgm_times(start, n), values, events=events, value_format=".0f")


def test_event_text_of_a_window_loaded_from_xml(tmp_path, wordpiece_tokenizer):
    events = (
        '\t<basal>\n\t\t<event ts="01-03-2024 00:00:00" value="0.8"/>\n\t</basal>\n'
        '\t<bolus>\n\t\t<event ts_begin="01-03-2024 10:03:00" ts_end="01-03-2024 10:03:00" type="normal" dose="4.0"/>'
        '\n\t</bolus>\n'
        '\t<meal>\n\t\t<event ts="01-03-2024 10:02:00" type="Breakfast" carbs="40"/>\n'
        '\t\t<event ts="01-03-2024 10:40:00" type="Snack" carbs="15"/>\n\t</meal>\n'
    )
    _write_xml(tmp_path, "training", "2024-03-01 00:00", 2 * 288, 0, events)
    _write_xml(tmp_path, "testing", "2024-03-03 00:10", 288, 1)
    splits = build_splits(DataConfig(data="ohio", root_path=str(tmp_path), patients=["7"], seq_len=24, pred_len=6,
                                     covariates=True))
    channels = ("glucose", *COVARIATES)
    builder = PromptBuilder(wordpiece_tokenizer, splits.description, 24, 6, 3, splits.scaler.glucose, events=True,
                            channels=channels, scaler_mean=splits.scaler.mean, scaler_std=splits.scaler.std)
    train = splits.train
    rows = [int(np.flatnonzero(train.origin_time == np.datetime64(t))[0])
            for t in ("2024-03-01T10:25", "2024-03-01T10:00", "2024-03-02T10:25")]
    x = train.__getitems__(rows)["x"]
    stats = builder.statistics(x)
    texts = [render(builder.pieces, stats, i) for i in range(len(rows))]
    # the meal at 10:02 and bolus at 10:03 land on the 10:05 mark: 20 min before a 10:25 origin; the 10:40 snack
    # comes after that origin and is absent
    assert texts[0].endswith(
        "; meal 40 g 20 min ago; bolus 4.0 U 20 min ago; basal 0.8 U/h; insulin on board 3.9 U; carbs on board 36 g"
    )
    assert "no meals or boluses logged; basal 0.8 U/h" in texts[1]  # the origin before the meal
    assert "no meals or boluses logged" in texts[2]  # a day later: nothing in the 2-hour window
    ids, lengths = builder(x)
    assert ids[0, : lengths[0]].tolist() == wordpiece_tokenizer(texts[0])["input_ids"]
