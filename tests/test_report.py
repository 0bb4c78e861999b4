"""``python -m emotion.report`` over real runs: two short trainings and one evaluation on the sample."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from emotion.evaluate import evaluate
from emotion.report import main, write_report
from emotion.reporting.table import COLUMNS
from emotion.train import train
from tests.helpers import MINI_XCEPTION_PARAMS, compose_cfg, quick_overrides, run_cli


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory, tiny_checkpoint) -> list[Path]:
    """Two mini_xception trainings (the 2-epoch tiny run, and 1 short epoch) and a val-only evaluation."""
    root = tmp_path_factory.mktemp("runs")
    dirs = [tiny_checkpoint.parent.parent, root / "train" / "b", root / "eval" / "c"]
    train(compose_cfg(dirs[1], quick_overrides("model=mini_xception", "trainer.max_epochs=1",
                                               "trainer.limit_train_batches=3", "model.lr=0.01")))
    evaluate(compose_cfg(dirs[2], ["data=fer2013_sample", "data.num_workers=0", "trainer=cpu",
                                   "trainer.enable_progress_bar=false", f"ckpt_path={tiny_checkpoint}",
                                   "split=val", "tta=flip"], config_name="eval"))
    return dirs


def _metrics(d: Path) -> dict:
    return json.loads((d / "metrics.json").read_text())


def test_report_tables_and_figures(run_dirs, tmp_path, capsys):
    out = tmp_path / "report"
    main([*map(str, run_dirs), "--out", str(out)])
    assert "3 runs; best:" in capsys.readouterr().out

    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert list(rows[0]) == [k for k, _, _ in COLUMNS]
    assert {"run", "arch", "params", "epochs", "val_acc", "test_acc", "val_f1_macro", "test_f1_macro", "tta",
            "wall_time_s", "device", "command"} == set(rows[0])
    assert len(rows) == 3 and {r["run"].split("/", 1)[-1] for r in rows} >= {"train/b", "eval/c"}
    val_accs = [float(r["val_acc"]) for r in rows]
    assert val_accs == sorted(val_accs, reverse=True)  # best val accuracy first
    for r in rows:
        (d,) = [d for d in run_dirs if d.as_posix().endswith("/" + r["run"])]
        m = _metrics(d)
        assert float(r["val_acc"]) == pytest.approx(m["val"]["acc"])
        assert r["arch"] == "mini_xception" and int(r["params"]) == m["params"] == MINI_XCEPTION_PARAMS
        assert r["command"] == m["command"] and r["device"] == m["device"]
        if "test" in m:
            assert float(r["test_acc"]) == pytest.approx(m["test"]["acc"])
            assert float(r["test_f1_macro"]) == pytest.approx(m["test"]["f1_macro"])
            assert int(r["epochs"]) == m["epochs"] and r["tta"] == "none"
        else:  # the evaluation: val only, no epochs
            assert r["test_acc"] == r["test_f1_macro"] == r["epochs"] == "" and r["tta"] == "flip"

    md = (out / "report.md").read_text()
    header = "| run | arch | params | epochs | val acc | test acc | val macro-F1 | test macro-F1 | tta | wall time " \
             "| device | command |"
    assert header in md
    table = [line for line in md.splitlines() if line.startswith("| ") and line != header]
    assert [line.split(" | ")[0][2:] for line in table] == [r["run"] for r in rows]  # same order as the CSV
    a = _metrics(run_dirs[0])
    assert len(a["history"]) == 2  # the learning curves have two points per split
    assert f"{a['val']['acc']:.2%}" in md and f"{a['test']['acc']:.2%}" in md

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"learning_curves.png", "per_class_accuracy.png"} <= set(images)
    assert len([i for i in images if i.startswith("confusion/")]) == 3
    for rel in images:
        assert (out / rel).stat().st_size > 5000, rel  # a real figure, not an empty canvas


def test_report_cli_rejects_a_folder_without_metrics(run_dirs, tmp_path):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    r = run_cli("emotion.report", str(run_dirs[0]), str(empty), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: '{empty}' has no metrics.json: the run is unfinished, failed, or not " \
                               "a run folder (a multirun's jobs are its numbered sub-folders)."
    assert not (tmp_path / "out" / "report.md").exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "it holds a list, not an object"),
    ('{"arch": "vgg"}', "it has neither a 'val' nor a 'test' block"),
    ('{"val": {"acc": "high"}}', "its 'val' block lacks acc, per_class_acc or confusion_matrix"),
])
def test_malformed_metrics_is_a_user_error(tmp_path, content, message, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.json").write_text(content)
    with pytest.raises(SystemExit) as exc:
        main([str(bad), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and str(bad / "metrics.json") in err


def test_skip_invalid_warns_and_reports_the_rest(run_dirs, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.json").write_text("{}")
    path = write_report([run_dirs[1], bad, tmp_path / "missing"], tmp_path / "out", skip_invalid=True)
    err = capsys.readouterr().err
    assert err.count("warning: skipped:") == 2 and "has neither a 'val' nor a 'test'" in err
    rows = list(csv.DictReader(io.StringIO(path.with_suffix(".csv").read_text())))
    assert [r["run"] for r in rows] == ["b"]  # a single run is named after its folder


def test_no_valid_run_at_all_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--skip-invalid", "--out", str(tmp_path / "out"), str(tmp_path / "nothing")])
    assert exc.value.code == 2 and "no run with a metrics.json" in capsys.readouterr().err
