"""The README's accuracy tables: our models beside the published results, one table per protocol.

    python experiments/accuracy_table.py [--runs experiments/results/cpu_runs]

Reads the ``metrics.json`` of each run kept under ``--runs`` (copied there from the run folder by
the command that made it; see the README), each bundled model's ``model.json``,
``experiments/results/bench_peers.json`` when it exists (the ``fer`` package, measured here), and
``experiments/results/ferplus_check.json`` when it exists (the members against the FER+ crowd).
Published numbers are quoted from their papers and labelled as such. Writes
``experiments/results/accuracy.md`` and prints it. Three tables, three claims:

* FER2013 protocol: PrivateTest accuracy on FER2013's own labels, each row saying which labels taught it
  ("FER2013 labels only", or "+ FER+ votes": both honest, not the same claim);
* the crowd: agreement with the FER+ plurality on the same faces (7 classes);
* FER+ protocol (Barsoum et al.): 8 classes, FER+ Test majority labels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emotion.checkpoint import BUNDLED_MODELS
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
#: Barsoum et al. 2016 (ICMI), their VGG13 at 64 px from scratch, mean ± std of 5 runs on FER+ Test (majority
#: labels, 8 classes), per training mode. The paper's PDF is not reachable here; these figures are as quoted,
#: mode by mode, in a summary of its Table 2 (found with the search tool); check them against the paper.
BARSOUM = [("majority voting (MV)", 0.83852, 0.00631), ("multi-label learning (ML)", 0.83966, 0.00362),
           ("probabilistic label drawing (PLD)", 0.84986, 0.00366), ("cross-entropy loss (CEL)", 0.84716, 0.00239)]
#: How every row of ours was made.
OUR_PROTOCOL = "from scratch; chosen on PublicTest; PrivateTest read once"


def labels_of(m: dict) -> str:
    """Which labels taught a run: recorded by runs since #31, else read off its command."""
    if m.get("protocol"):
        return m["protocol"]
    command = str(m.get("command", ""))
    if "ferplus" in command:
        return "FER2013 labels + FER+ votes"
    if "fast_cpu" in command and "distill=null" not in command:
        return "FER2013 labels + a teacher's probabilities"
    return "FER2013 labels only"
#: The peer most people install, measured on this machine in issue #12 when no bench_peers.json exists.
FER_PACKAGE_MEASURED = 0.5829


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def _row(name: str, val: float | None, test: float | None, tta: str, source: str,
         protocol: str = OUR_PROTOCOL) -> str:
    return f"| {name} | {_pct(val)} | {_pct(test)} | {tta} | {protocol} | {source} |"


def our_rows(runs_dir: Path, ferplus: bool = False) -> list[str]:
    """Our runs of one protocol: FER2013's 7 classes, or (``ferplus``) FER+'s 8."""
    rows = []
    for path in sorted(runs_dir.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        if labels_of(m).startswith("FER+ (") != ferplus:
            continue
        what = f"{m['epochs']} epochs" if "epochs" in m else "evaluation only"
        label = f"ours: {path.parent.name} ({m.get('arch')}, {what}, {m.get('device', '?')})"
        seconds = m.get("wall_time_s") if "epochs" in m else None
        source = f"`{path.relative_to(HERE.parent)}`" + (f", {seconds / 60:.0f} min" if seconds else "")
        rows.append(_row(label, (m.get("val") or {}).get("acc"), (m.get("test") or {}).get("acc"),
                         m.get("tta", "none"), source, f"{labels_of(m)}; {OUR_PROTOCOL}"))
    return rows


def crowd_rows() -> list[str]:
    """The members against the FER+ plurality (experiments/ferplus_check.py's record)."""
    path = RESULTS / "ferplus_check.json"
    if not path.is_file():
        return ["(no `experiments/results/ferplus_check.json` yet: run `python experiments/ferplus_check.py`)"]
    rec = json.loads(path.read_text())
    rows = [f"FER+ Test: the {rec['faces']['test']} PrivateTest faces whose FER+ plurality is one of the 7 classes "
            f"(`experiments/results/ferplus_check.json`; the default is chosen on the {rec['faces']['val']} PublicTest "
            f"faces by experiments/members/RULES.md: `{rec['chosen']['default']}`).", "",
            "| member | labels | FER+ Test agreement | macro recall | neutral recall | sad false alarms | "
            "FER2013 PrivateTest |", "|---|---|---:|---:|---:|---:|---:|"]
    rows += [f"| `{r['member']}` ({r['arch']}) | {r['protocol']} | {_pct(r['test_acc'])} | "
             f"{r['test_macro_recall']:.3f} | {r['test_neutral_recall']:.2f} | {_pct(r['test_sad_false_alarms'])} | "
             f"{_pct(r['test_fer2013_acc'])} |" for r in rec["members"]]
    return rows


def bundled_rows() -> list[str]:
    """Each bundled model as its model.json records it (``metrics``: the export's own scores where its logits
    were changed, else its training run's)."""
    rows = []
    for name, folder in BUNDLED_MODELS.items():
        if not (folder / "model.json").is_file():
            continue
        meta = json.loads((folder / "model.json").read_text())
        m = meta["metrics"]
        labels = labels_of({"command": meta.get("train_command", ""), "protocol": meta.get("protocol")})
        if meta["hparams"].get("distill") and labels == "FER2013 labels only":
            labels = "FER2013 labels + a teacher's probabilities"
        if meta.get("class_bias"):
            labels += " + a class bias fitted on PublicTest"
        rows.append(_row(f"ours: bundled `{name}` ({meta['hparams']['arch']})", (m.get("val") or {}).get("acc"),
                         (m.get("test") or {}).get("acc"), m.get("tta") or "none",
                         f"`{folder.relative_to(HERE.parent)}/model.json`", f"{labels}; {OUR_PROTOCOL}"))
    return rows


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
    ap.add_argument("--out", default=str(RESULTS / "accuracy.md"))
    args = ap.parse_args()
    header = ["| model | PublicTest (val) | PrivateTest (test) | TTA | protocol | source |",
              "|---|---:|---:|---|---|---|"]
    lines = ["## FER2013 protocol (7 classes, FER2013's labels on PrivateTest)", "", *header,
             *our_rows(Path(args.runs)), *bundled_rows(), peer_row(),
             *(_row(f"published: {n}", val, test, "–", src, protocol) for n, val, test, protocol, src in PUBLISHED),
             "", "## The same faces judged by the crowd (FER+ plurality, 7 classes)", "", *crowd_rows(),
             "", "## FER+ protocol (Barsoum et al.: 8 classes, FER+ Valid to choose, FER+ Test majority labels)", "",
             "| model | FER+ Valid | FER+ Test | TTA | protocol | source |", "|---|---:|---:|---|---|---|",
             *our_rows(Path(args.runs), ferplus=True),
             *(f"| published: Barsoum et al. 2016, VGG13, {mode} | – | {100 * acc:.3f} % ± {100 * sd:.3f} | – | "
               "from scratch, 64 px, mean of 5 runs | ICMI 2016, arXiv:1608.01041, Table 2 (as quoted, see "
               "experiments/accuracy_table.py) |" for mode, acc, sd in BARSOUM)]
    text = "\n".join(lines) + "\n"
    with atomic_path(Path(args.out)) as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
