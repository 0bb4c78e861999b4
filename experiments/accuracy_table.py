"""The README's accuracy table: our models beside the published FER2013 results.

    python experiments/accuracy_table.py [--runs experiments/results/cpu_runs] [--bundled DIR]

Reads the ``metrics.json`` of each run kept under ``--runs`` (copied there from the run folder by
the command that made it; see the README), the bundled model's ``model.json``, and
``experiments/results/bench_peers.json`` when it exists (the ``fer`` package, measured here).
Published numbers are quoted from their papers and labelled as such. Writes
``experiments/results/accuracy.md`` and prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emotion.checkpoint import DEFAULT_MODEL
from emotion.io import atomic_path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: Published results, not measured here: (name, PublicTest, PrivateTest, protocol, source). The protocol says
#: which split the number is on and which split chose the checkpoint, the pretraining and the input size,
#: as read in the authors' code and papers (issue #22); a number on the split that also chose the model
#: is not comparable with ours.
PUBLISHED = [
    ("Khaireddin & Chen 2021, VGG (300 epochs, GPU)", 0.7328, None,
     "PublicTest, selected on PrivateTest (their data/fer2013.py validates on PrivateTest; the confusion "
     "matrix's row sums are PublicTest's class counts); from scratch", "arXiv:2105.03588"),
    ("Residual Masking Network (Pham et al. 2020)", None, 0.7414,
     "ImageNet-pretrained ResNet-34 at 224 px; users report 65.6-73.6 % reproducing it (RMN issues #7, #9, #41, "
     "#44), and its ensemble script looks chosen against the test targets", "ICPR 2020"),
    ("LHC-Net (Pecoraro et al. 2022)", None, 0.7442, "ImageNet-pretrained ResNet-34 at 224 px", "Sensors 22(13)"),
    ("EmoNeXt (El Boudouri & Bohi 2023)", None, 0.7612, "ImageNet-22k-pretrained ConvNeXt", "EmoNeXt paper, 2023"),
    ("Pramerdorfer & Kampel 2016, ensemble of modern CNNs", None, 0.752,
     "from scratch, no extra data: the honest anchor for ours (the abstract's ensemble figure)", "arXiv:1612.02903"),
    # Their single networks, as their paper's results table gives them (indexed by sotaverified.org).
    ("Pramerdorfer & Kampel 2016, VGG", None, 0.727, "from scratch, no extra data; a single network",
     "arXiv:1612.02903"),
    ("Pramerdorfer & Kampel 2016, ResNet", None, 0.724, "from scratch, no extra data; a single network",
     "arXiv:1612.02903"),
    ("Pramerdorfer & Kampel 2016, Inception", None, 0.716, "from scratch, no extra data; a single network",
     "arXiv:1612.02903"),
]
#: How every row of ours was made.
OUR_PROTOCOL = "from scratch; chosen on PublicTest; PrivateTest read once"
#: The peer most people install, measured on this machine in issue #12 when no bench_peers.json exists.
FER_PACKAGE_MEASURED = 0.5829


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def _row(name: str, val: float | None, test: float | None, tta: str, source: str,
         protocol: str = OUR_PROTOCOL) -> str:
    return f"| {name} | {_pct(val)} | {_pct(test)} | {tta} | {protocol} | {source} |"


def our_rows(runs_dir: Path) -> list[str]:
    rows = []
    for path in sorted(runs_dir.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        what = f"{m['epochs']} epochs" if "epochs" in m else "evaluation only"
        label = f"ours: {path.parent.name} ({m.get('arch')}, {what}, {m.get('device', '?')})"
        seconds = m.get("wall_time_s") if "epochs" in m else None
        source = f"`{path.relative_to(HERE.parent)}`" + (f", {seconds / 60:.0f} min" if seconds else "")
        rows.append(_row(label, (m.get("val") or {}).get("acc"), (m.get("test") or {}).get("acc"),
                         m.get("tta", "none"), source))
    return rows


def bundled_row(folder: Path) -> str:
    """The bundled model as its training run measured it (``metrics`` in model.json)."""
    meta = json.loads((folder / "model.json").read_text())
    m = meta["metrics"]
    name = f"ours: bundled model ({meta['hparams']['arch']})"
    return _row(name, (m.get("val") or {}).get("acc"), (m.get("test") or {}).get("acc"), m.get("tta") or "none",
                f"`{folder.relative_to(HERE.parent)}/model.json`")


def peer_row() -> str:
    bench = RESULTS / "bench_peers.json"
    if bench.is_file():
        acc = json.loads(bench.read_text())["fer"]["privatetest_acc"]
        return _row("`fer` 25.10.3 package, shipped model", None, acc, "none",
                    "measured: `experiments/results/bench_peers.json`", "its shipped weights, scored here")
    return _row("`fer` 25.10.3 package, shipped model", None, FER_PACKAGE_MEASURED, "none",
                "measured on this machine in issue #12 (no bench_peers.json yet)", "its shipped weights, scored here")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=str(RESULTS / "cpu_runs"), help="folder of run folders with metrics.json")
    ap.add_argument("--bundled", default=str(DEFAULT_MODEL), help="exported model folder")
    ap.add_argument("--out", default=str(RESULTS / "accuracy.md"))
    args = ap.parse_args()
    lines = ["| model | PublicTest (val) | PrivateTest (test) | TTA | protocol | source |",
             "|---|---:|---:|---|---|---|",
             *our_rows(Path(args.runs)), bundled_row(Path(args.bundled)), peer_row(),
             *(_row(f"published: {n}", val, test, "–", src, protocol) for n, val, test, protocol, src in PUBLISHED)]
    text = "\n".join(lines) + "\n"
    with atomic_path(Path(args.out)) as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
