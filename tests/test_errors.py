"""Bad input gets a clear answer and nothing is lost.

Every user error through the entry points (run_main.py, forecast.py, scripts.generate_cohort) is one line on stderr
that names the file or flag and what to do, with exit status 2 and no traceback: a few are proven in real
subprocesses, the rest in-process through the same ``main``. Data-quality problems the reader can survive
(impossible values, duplicates, unsorted or incomplete readings) are rejected and counted, not fatal. Concurrent
appends to one results CSV lose and interleave no row.
"""

from __future__ import annotations

import gzip
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertModel

import forecast as forecast_cli
import run_main
from builders import cgm_times, patient_xml, sine_glucose, write_file
from data_provider.ohio import load_cohort
from exp.checkpoint import load_checkpoint, save_checkpoint
from configs import ModelConfig, RunConfig
from scripts import generate_cohort
from utils.results import append_row

REPO = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2022-03-01 00:00:17")


def _series(n: int, start: pd.Timestamp = START) -> tuple[list[pd.Timestamp], np.ndarray]:
    return list(cgm_times(start, n)), sine_glucose(n, 140, 50, 20).round().astype(int)


def _xml(times, values) -> str:
    """Patient 7's file: every case here uses that patient."""
    return patient_xml("7", times, values)


TRAIN = _xml(*_series(3 * 288))  # 3 days
TEST = _xml(*_series(288, START + pd.Timedelta(days=3, hours=1)))


def _folder(root: Path, name: str, train: str | bytes | None = TRAIN, test: str | bytes | None = TEST,
            suffix: str = ".xml") -> Path:
    """root/name holding patient 7's files as given (text or raw bytes, None leaves that part out)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for part, content in (("training", train), ("testing", test)):
        if content is not None:
            write_file(folder / f"7-ws-{part}{suffix}", content)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbones):
    """A one-epoch tiny Time-LLM run on a synthetic patient, and the flags that made it."""
    root = tmp_path_factory.mktemp("errors")
    flags = ["--data", "ohio", "--root_path", str(_folder(root, "good")), "--patients", "7", "--llm_model", "BERT",
             "--llm_path", str(tiny_backbones["bert"]), "--d_ff", "32", "--num_tokens", "16", "--train_epochs", "1",
             "--max_train_windows", "64", "--max_val_windows", "32", "--checkpoints", str(root / "runs")]
    assert run_main.main(flags) == 0
    (run_dir,) = [p for p in (root / "runs").iterdir() if p.is_dir()]
    return root, flags, run_dir


def _one_line(text: str, *expected: str) -> str:
    """The stderr of a user error: exactly one line, 'error: ...', containing every expected fragment."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ") and "Traceback" not in text, text
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.mark.slow
def test_subprocess_errors_are_one_line_exit_2(trained, tmp_path):
    """Real processes, started together: exit 2, one stderr line, no traceback (the rest run in-process)."""
    _, _, run_dir = trained
    short = tmp_path / "short.csv"
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=20, freq="5min"), "glucose": 120}).to_csv(short)
    truncated = _folder(tmp_path, "truncated", TRAIN[: len(TRAIN) // 2])
    cases = {
        "flag": (["run_main.py", "--frobnicate", "3"], ["unrecognized arguments: --frobnicate"]),
        "xml": (["run_main.py", "--data", "ohio", "--root_path", str(truncated)], ["7-ws-training.xml", "well-formed"]),
        "forecast": (["forecast.py", "--checkpoint", str(run_dir), "--input", str(short)], ["short.csv", "6 h"]),
        "cohort": (["-m", "scripts.generate_cohort", "--patients", "99"], ["--patients must be 1-"]),
    }
    procs = {name: subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name, (argv, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (name, err)
        _one_line(err, *cases[name][1])


DATA_CASES = {
    "truncated XML": (dict(train=TRAIN[:5000]), "not well-formed XML"),
    "empty file": (dict(train=""), "not well-formed XML"),
    "binary junk": (dict(train=bytes(range(256)) * 4), "not well-formed XML"),
    "gzip that is not gzip": (dict(train=TRAIN, test=TEST, suffix=".xml.gz"), "ends in .gz but is not gzip"),
    "damaged gzip": (dict(train=gzip.compress(TRAIN.encode())[:-100], test=gzip.compress(TEST.encode()),
                          suffix=".xml.gz"), "damaged gzip"),
    "ISO timestamps": (dict(train=_xml([f"{t:%Y-%m-%dT%H:%M:%S}" for t in _series(864)[0]], _series(864)[1])),
                       "not DD-MM-YYYY HH:MM:SS (e.g. '2022-03-01T00:00:17')"),
    "text glucose": (dict(train=TRAIN.replace('value="140"', 'value="HIGH"', 1)), "not numbers (e.g. 'HIGH')"),
    "mmol/L values": (dict(train=_xml(_series(864)[0], np.round(_series(864)[1] / 18.016, 1))), "look like mmol/L"),
    "all impossible": (dict(train=_xml(_series(864)[0], [5000] * 864)), "no usable glucose reading"),
    "wrong root element": (dict(train=TRAIN.replace("<patient ", "<person ").replace("</patient>", "</person>")),
                           "expected <patient>"),
    "no glucose": (dict(train='<patient id="7"><glucose_level></glucose_level></patient>'), "no <glucose_level>"),
    "testing overlaps training": (dict(test=_xml(*_series(288, START + pd.Timedelta(days=1)))), "starts before"),
    "no testing file": (dict(test=None), "no 7-ws-testing.xml"),
    "too short for one window": (dict(train=_xml(*_series(60))), "no complete training window of 72+12"),
    "testing file too short": (dict(test=_xml(*_series(8, START + pd.Timedelta(days=3, hours=1)))),
                               "patient 7 gives no test window"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_files(case, tmp_path, capsys):
    kwargs, message = DATA_CASES[case]
    folder = _folder(tmp_path, "data", **kwargs)
    assert run_main.main(["--data", "ohio", "--root_path", str(folder), "--checkpoints", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err, message)
    assert str(folder) in line or "patients 7" in line or "patient 7" in line  # says which file or patient


FLAG_CASES = {
    "unknown patient": (["--patients", "9999"], "unknown patient id(s) 9999"),
    "unknown test patient": (["--patients", "1001", "--test_patients", "abc"], "unknown patient id(s) abc"),
    "unknown backbone": (["--llm_model", "GPT5"], "unknown --llm_model 'GPT5'"),
    "unknown model": (["--model", "Transformer9"], "unknown --model 'Transformer9'"),
    "not an int": (["--seq_len", "abc"], "--seq_len: invalid int value"),
    "ohio without folder": (["--data", "ohio"], "--data ohio needs --root_path"),
    "missing folder": (["--data", "ohio", "--root_path", "/nonexistent/x"], "/nonexistent/x does not exist"),
    "amp vs no precision": (["--use_amp", "--mixed_precision", "no"], "--use_amp contradicts"),
    "evaluate without checkpoint": (["--is_training", "0"], "needs --checkpoint RUN_DIR"),
    "missing checkpoint": (["--is_training", "0", "--checkpoint", "/nonexistent/run"], "no checkpoint at"),
    "input while training": (["--input", "x.csv"], "--input forecasts with a saved run"),
    "units without input": (["--units", "mmol"], "go with --input"),
    "seq_len 1": (["--seq_len", "1"], "--seq_len must be >= 2"),
    "val_fraction": (["--val_fraction", "1.5"], "--val_fraction must be in (0, 1)"),
    "negative cap": (["--patients", "1001", "--max_train_windows", "-5"],
                     "--max_train_windows must be >= 1 (0 on the command line = no cap), got -5"),
    "negative workers": (["--num_workers", "-1"], "--num_workers must be >= 0"),
    "zero d_model": (["--d_model", "0"], "--d_model must be >= 1"),
    "zero heads": (["--n_heads", "0"], "--n_heads must be >= 1"),
    "dropout 2": (["--dropout", "2"], "--dropout must be in [0, 1)"),
    "zero steps": (["--max_steps_per_epoch", "0"], "--max_steps_per_epoch must be >= 1"),
    "data_path not a patient file": (["--data_path", "ETTh1.csv"], "--data_path ETTh1.csv: expected a patient file"),
    "data_path vs patients": (["--data_path", "570-ws-training.xml", "--patients", "559"], "selects patient 570"),
    "rate without scenario": (["--missing_rate", "0.3"], "--missing none with --missing_rate 0.3 does nothing"),
    "scenario without rate": (["--missing", "random"], "--missing random with --missing_rate 0.0 does nothing"),
    "resume when evaluating": (["--is_training", "0", "--checkpoint", "x", "--resume"], "drop it with --is_training 0"),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_bad_flags(case, tmp_path, capsys):
    argv, message = FLAG_CASES[case]
    assert run_main.main([*argv, "--checkpoints", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, message)


@pytest.mark.parametrize("argv, message", [
    (["--llm_layers", "5"], "--llm_layers 5 is outside 1..2"),
    (["--llm_layers", "0"], "--llm_layers must be >= 1, got 0"),
    (["--llm_path", "/nonexistent/bert"], "--llm_path /nonexistent/bert has no config.json"),
    (["--llm_dim", "64"], "--llm_dim 64 does not match"),
])
def test_backbone_flags(trained, argv, message, tmp_path, capsys):
    _, flags, _ = trained
    assert run_main.main([*flags, "--checkpoints", str(tmp_path), *argv]) == 2
    _one_line(capsys.readouterr().err, message)


def test_absent_weights_say_how_to_get_them(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("models.backbones.try_to_load_from_cache", lambda *a, **k: None)  # nothing cached
    assert run_main.main(["--llm_model", "GPT2", "--patients", "1001", "--checkpoints", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "no local weights for GPT2", "--llm_path DIR", "--llm_weights random")


def test_outputs_that_cannot_be_written_fail_before_training(trained, tmp_path, capsys):
    _, flags, _ = trained
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert run_main.main([*flags, "--checkpoints", str(a_file)]) == 2
    _one_line(capsys.readouterr().err, "cannot create run folder", "--checkpoints")
    assert run_main.main([*flags, "--checkpoints", str(tmp_path / "r"), "--results_csv", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "is a folder", "--results_csv")
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b\n1,2\n"unclosed\n')
    assert run_main.main([*flags, "--checkpoints", str(tmp_path / "r"), "--results_csv", str(bad)]) == 2
    _one_line(capsys.readouterr().err, "not a readable CSV", "bad.csv")
    assert not list((tmp_path / "r").rglob("checkpoint.pt"))  # nothing trained


def test_checkpoints_from_elsewhere(trained, tmp_path, capsys):
    root, flags, run_dir = trained
    cfg, scaler, state, _ = load_checkpoint(run_dir)
    evaluate = ["--is_training", "0", "--checkpoint"]

    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    assert run_main.main([*evaluate, str(tmp_path / "foreign.pt")]) == 2
    _one_line(capsys.readouterr().err, "foreign.pt is not an LLM-TIME checkpoint")

    (tmp_path / "text.pt").write_text("hello")
    assert run_main.main([*evaluate, str(tmp_path / "text.pt")]) == 2
    _one_line(capsys.readouterr().err, "text.pt is not a readable LLM-TIME checkpoint")

    # The backbone behind llm_path replaced by a wider one since training.
    wider = tmp_path / "wider"
    BertModel(BertConfig(vocab_size=30522, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(wider)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        (wider / name).write_bytes((Path(cfg.model.llm_path) / name).read_bytes())
    cfg.model.llm_path = str(wider)
    save_checkpoint(tmp_path / "swapped", state, cfg, scaler)
    assert run_main.main([*evaluate, str(tmp_path / "swapped")]) == 2
    _one_line(capsys.readouterr().err, "does not fit")

    # A baseline's config with weights of another model (a file copied between runs).
    dlinear = RunConfig(data=cfg.data, model=ModelConfig(model="DLinear"))
    save_checkpoint(tmp_path / "copied", state, dlinear, scaler)
    for argv in ([*evaluate, str(tmp_path / "copied")],):
        assert run_main.main(argv) == 2
        _one_line(capsys.readouterr().err, "do not fit the model its config describes", "copied")
    csv = tmp_path / "in.csv"
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=100, freq="5min"), "glucose": 120}).to_csv(csv)
    assert forecast_cli.main(["--checkpoint", str(tmp_path / "copied"), "--input", str(csv)]) == 2
    _one_line(capsys.readouterr().err, "do not fit")


def test_resume_with_other_settings_is_refused(trained, capsys):
    _, flags, run_dir = trained
    assert not (run_dir / "last.pt").exists()  # a finished run keeps its checkpoint, not the resume state
    assert run_main.main([*flags, "--resume", "--d_ff", "16"]) == 2
    _one_line(capsys.readouterr().err, "--resume", "model.d_ff 32 -> 16", "without --resume")


FORECAST_CASES = {
    "missing input": (lambda d: d / "nope.csv", "nope.csv does not exist"),
    "unknown extension": (lambda d: _text(d / "cgm.txt", "timestamp,glucose\n"), "expected an .xml, .xml.gz or .csv"),
    "no header": (lambda d: _text(d / "a.csv", "2024-01-01 00:00,120\n"), "has no timestamp or glucose column"),
    "empty csv": (lambda d: _text(d / "b.csv", ""), "is empty"),
    "bad timestamp": (lambda d: _text(d / "c.csv", "timestamp,glucose\n2024-01-01 00:00,120\nyesterday,130\n"),
                      "line 3: 'yesterday'"),
    "text glucose": (lambda d: _text(d / "e.csv", "timestamp,glucose\n2024-01-01 00:00,LOW\n"), "not numbers"),
    "offsets and local times": (lambda d: _text(d / "f.csv", "timestamp,glucose\n2024-03-30T10:00+01:00,120\n"
                                                             "2024-03-31T10:00,130\n"),
                                "some timestamps have a UTC offset"),
}


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(FORECAST_CASES))
def test_forecast_input_errors(trained, case, tmp_path, capsys):
    make, message = FORECAST_CASES[case]
    path = make(tmp_path)
    assert forecast_cli.main(["--checkpoint", str(trained[2]), "--input", str(path)]) == 2
    _one_line(capsys.readouterr().err, message, path.name)


def test_forecast_flag_errors(trained, tmp_path, capsys):
    mmol = _text(tmp_path / "m.csv", "timestamp,glucose\n" + "".join(
        f"{t:%Y-%m-%d %H:%M},{7 + (i % 5) / 10}\n" for i, t in enumerate(pd.date_range("2024-01-01", periods=80,
                                                                                         freq="5min"))))
    run = str(trained[2])
    for argv, message in (
        (["--input", str(mmol), "--units", "mgdl"], "looks like mmol/L"),
        (["--input", str(mmol), "--units", "stone"], "--units: invalid choice"),
        (["--input", str(mmol), "--output", str(tmp_path)], "is a folder"),
        (["--input", str(mmol), "--batch_size", "0"], "--batch_size must be >= 1"),
    ):
        assert forecast_cli.main(["--checkpoint", run, *argv]) == 2
        _one_line(capsys.readouterr().err, message)
    assert forecast_cli.main(["--input", str(mmol)]) == 2
    _one_line(capsys.readouterr().err, "--checkpoint")


def test_generate_cohort_errors(tmp_path, capsys):
    for argv, message in ((["--patients", "0"], "--patients must be 1-"), (["--workers", "0"], "--workers"),
                          (["--out", str(_text(tmp_path / "f", "x"))], "is a file"), (["--bogus"], "--bogus")):
        assert generate_cohort.main(argv) == 2
        _one_line(capsys.readouterr().err, message)


def test_data_quality_problems_are_rejected_and_counted(tmp_path):
    times, values = _series(300)
    values[[5, 50, 120]] = [0, -40, 5000]
    with pytest.warns(UserWarning, match=r"rejected 3 glucose values outside 10-1000 mg/dL \(e\.g\. 0 at 2022-03-01"):
        rec = load_cohort(_folder(tmp_path, "impossible", _xml(times, values)))["7"]
    assert rec.train.grid["glucose"].isna().sum() == 3 and any("rejected 3" in n for n in rec.notes)

    order = np.random.default_rng(0).permutation(300)
    shuffled = [times[i] for i in order] + times[100:110]  # out of order, and 10 exact duplicates
    with pytest.warns(UserWarning) as caught:
        messy = load_cohort(_folder(tmp_path, "messy", _xml(shuffled, [*values[order], *[150] * 10])))["7"]
    text = " | ".join(str(w.message) for w in caught)
    assert "10 CGM readings share a 5-minute slot" in text and "(10 exact duplicate" in text
    assert "earlier than the one before them" in text
    clean = rec.train.grid["glucose"]
    pd.testing.assert_series_equal(messy.train.grid["glucose"], clean)  # sorted; duplicates did not replace

    gaps = _xml(times, values).replace('value="140"', 'value=""', 0)
    gaps = gaps.replace(f'ts="{times[7]:%d-%m-%Y %H:%M:%S}"', 'ts=""')
    with pytest.warns(UserWarning, match="skipped 1 glucose readings without a timestamp or value"):
        load_cohort(_folder(tmp_path, "incomplete", gaps))


@pytest.mark.slow
def test_concurrent_appends_lose_and_interleave_nothing(tmp_path):
    """4 processes x 25 appends to one CSV: all 100 rows present once, each row whole."""
    path = tmp_path / "results.csv"
    rows = [(path, {"writer": w, "i": i, "text": f"w{w}-row{i}," * 3, "value": w * 1000 + i})
            for i in range(25) for w in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(append_row, rows, chunksize=1)
    table = pd.read_csv(path)
    assert len(table) == 100 and not table.duplicated(["writer", "i"]).any()
    assert (table["value"] == table["writer"] * 1000 + table["i"]).all()
    assert (table["text"] == [f"w{w}-row{i}," * 3 for w, i in zip(table["writer"], table["i"])]).all()
