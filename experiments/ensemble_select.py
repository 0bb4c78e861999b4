"""Pick ensemble members on PublicTest only: each candidate's accuracy, how often each pair of
candidates disagrees, and a greedy forward selection of the members whose averaged probabilities
score best on PublicTest.

    python experiments/ensemble_select.py default fast outputs/train/runs/x/checkpoints/epoch_039.ckpt … \
        [--tta flip] [--root ../shared/data/fer2013] [--out experiments/results/ensemble_select]
    python experiments/ensemble_select.py member:bundled_default member:vgg_ferplus_seed42 … \
        [--read-test-once experiments/results/ensembles/NAME.json]

Candidates are checkpoints, exported folders, bundled names, or committed member records
(``member:NAME``, ``experiments/members/``), whose PublicTest probabilities are read from the record
(with the TTA their runs chose; ``--tta`` is for the others), so a member needs no weights. Only
PublicTest is read to choose. The chosen ensemble's PrivateTest score is then read once: by the
``emotion.evaluate`` command this prints, or, when every chosen member is a record, by
``--read-test-once FILE``, which writes it there and refuses if FILE exists. Writes ``<out>.json``
and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from make_soft_labels import model_probs  # noqa: E402  (experiments/, the script's own folder)

from emotion.checkpoint import load_model  # noqa: E402
from emotion.data.datamodule import FER2013DataModule  # noqa: E402
from emotion.errors import EmotionError, user_errors_exit  # noqa: E402
from emotion.io import write_json  # noqa: E402
from emotion.reporting.members import load_member, member_source  # noqa: E402


def val_probs(source: str, images: np.ndarray, labels: np.ndarray, tta: str) -> tuple[np.ndarray, str]:
    """PublicTest probabilities of one candidate, at its own input size, and its architecture."""
    if member_source(source) is not None:
        member = load_member(source)
        return member.probs("val", images, labels), str(member.info["arch"])
    model = load_model(source, device="cpu")
    return model_probs(model, images, tta), str(model.hparams.arch)


def read_test_once(path: Path, chosen: list[str], images: np.ndarray, labels: np.ndarray) -> dict:
    """The chosen members' averaged PrivateTest accuracy, read from their records and written to ``path``;
    a second read of the same ensemble is refused (its file exists)."""
    if path.exists():
        raise EmotionError(f"'{path}' exists: this ensemble's PrivateTest was read already. Choose on PublicTest "
                           "again with other candidates, and give the new ensemble another name.")
    if not all(member_source(c) is not None for c in chosen):
        raise EmotionError("--read-test-once reads member records only: every chosen candidate must be member:NAME.")
    probs = np.mean([load_member(c).probs("test", images, labels) for c in chosen], 0)
    record = {"members": chosen, "split": "test (PrivateTest)", "faces": int(len(labels)),
              "acc": round(float((probs.argmax(1) == labels).mean()), 4), "command": "python " + " ".join(sys.argv)}
    write_json(path, record)
    return record


def greedy(probs: list[np.ndarray], labels: np.ndarray) -> list[dict]:
    """Forward selection: add the candidate that most raises the averaged ensemble's accuracy, while
    one does. Returns each step's members (indices) and accuracy."""
    chosen: list[int] = []
    steps: list[dict] = []
    best = 0.0
    while len(chosen) < len(probs):
        scores = {i: float((np.mean([probs[j] for j in chosen + [i]], 0).argmax(1) == labels).mean())
                  for i in range(len(probs)) if i not in chosen}
        i, acc = max(scores.items(), key=lambda kv: kv[1])
        if acc <= best:
            break
        chosen.append(i)
        best = acc
        steps.append({"members": list(chosen), "val_acc": round(acc, 4)})
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidates", nargs="+", help="checkpoints, exported folders or bundled names")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--tta", default="flip", choices=["none", "flip"])
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "ensemble_select",
                    help="results path without suffix")
    ap.add_argument("--read-test-once", type=Path, metavar="FILE",
                    help="then read the chosen ensemble's PrivateTest once, from the member records, into FILE")
    args = ap.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    dm = FER2013DataModule(args.root, cache_dir="~/.cache/emotion", num_workers=0)
    dm.setup()
    images, labels = dm.arrays["val"]
    probs, archs = zip(*(val_probs(c, images, labels, args.tta) for c in args.candidates))
    preds = [p.argmax(1) for p in probs]
    accs = [float((p == labels).mean()) for p in preds]
    n = len(probs)
    disagree = [[round(float((preds[i] != preds[j]).mean()), 4) for j in range(n)] for i in range(n)]
    pair_acc = [[round(float((((probs[i] + probs[j]) / 2).argmax(1) == labels).mean()), 4) for j in range(n)]
                for i in range(n)]
    steps = greedy(list(probs), labels)
    all_acc = round(float((np.mean(probs, 0).argmax(1) == labels).mean()), 4)
    chosen = [args.candidates[i] for i in steps[-1]["members"]]
    if all(member_source(c) is not None for c in chosen):  # records, no weights: read from their probabilities
        command = "this command again with --read-test-once FILE"
    else:
        command = ("python -m emotion.evaluate 'ckpt_path=[" + ",".join(chosen) + f"]' split=test tta={args.tta} "
                   f"data.root={args.root}")
    record = {"split": "val (PublicTest)", "faces": int(len(labels)), "tta": args.tta,
              "candidates": [{"source": c, "arch": a, "val_acc": round(v, 4)}
                             for c, a, v in zip(args.candidates, archs, accs)],
              "disagreement": disagree, "pair_val_acc": pair_acc, "all_val_acc": all_acc, "greedy": steps,
              "chosen": chosen,
              "test_command": command, "seconds": round(time.perf_counter() - start, 1),
              "command": "python " + " ".join(sys.argv)}
    out = args.out
    write_json(out.with_suffix(".json"), record)
    labels_ = [f"{i}" for i in range(n)]
    md = [f"Ensemble members on PublicTest ({len(labels)} faces, tta={args.tta}; `{record['command']}`).", "",
          "| # | candidate | arch | PublicTest |", "|---|---|---|---:|"]
    md += [f"| {i} | `{c}` | {a} | {100 * v:.2f} % |" for i, (c, a, v) in enumerate(zip(args.candidates, archs, accs))]
    md += ["", "Pairwise disagreement (share of faces whose predicted class differs):", "",
           "| | " + " | ".join(labels_) + " |", "|---" * (n + 1) + "|"]
    md += [f"| {i} | " + " | ".join(f"{d:.3f}" for d in row) + " |" for i, row in enumerate(disagree)]
    md += ["", "Greedy forward selection on PublicTest:", ""]
    md += [f"- members {s['members']}: {100 * s['val_acc']:.2f} %" for s in steps]
    md += [f"- (all {n} averaged: {100 * all_acc:.2f} %)"]
    md += ["", f"PrivateTest, read once: `{command}`", ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    if args.read_test_once:
        print(read_test_once(args.read_test_once, chosen, *dm.arrays["test"]))


if __name__ == "__main__":
    user_errors_exit(main)
