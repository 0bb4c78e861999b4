"""Fit a per-class logit bias (a prior correction) to a member on PublicTest alone, for the default's rule.

    python experiments/fit_class_prior.py --member vgg_ferplus_seed42 [--out experiments/results/class_prior/NAME.json]

A model taught by the crowd's votes under-calls the classes the crowd seldom agrees on (fear, disgust): its
probabilities carry the crowd's priors. Adding ``b`` to its logits trades a little agreement for recall on those
classes. ``b`` is fitted by coordinate ascent on the rule's own score (experiments/members/RULES.md: the mean of
FER+ agreement and macro recall over the 7 classes) on the member's PublicTest probabilities, then shrunk by the
factor that scores best on held-out halves of PublicTest (2-fold). PrivateTest is not read. ``emotion.export
--class-bias FILE`` folds ``b`` into the net's last layer, so the exported model is the adjusted one for every
tool (exactly so when the member's TTA is none, as it is for the logits of one view).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.data.datamodule import FER2013DataModule  # noqa: E402
from emotion.data.sources.ferplus import SHIPPED_VOTES  # noqa: E402
from emotion.io import write_json  # noqa: E402
from emotion.reporting.agreement import crowd_agreement  # noqa: E402
from emotion.reporting.members import load_member  # noqa: E402

GRID = np.linspace(-1.5, 1.5, 31)
SHRINKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def rule_score(probs: np.ndarray, votes: np.ndarray) -> float:
    r = crowd_agreement(probs, votes)
    return (r["acc"] + r["macro_recall"]) / 2


def adjust(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``softmax(log p + b)``: what the model gives with ``b`` added to its logits."""
    logits = np.log(np.clip(probs, 1e-8, 1)) + bias
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def fit(probs: np.ndarray, votes: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Coordinate ascent over each class's bias on :data:`GRID`."""
    bias, best = np.zeros(probs.shape[1]), rule_score(probs, votes)
    for _ in range(rounds):
        for c in range(probs.shape[1]):
            for g in GRID:
                trial = bias.copy()
                trial[c] = g
                s = rule_score(adjust(probs, trial), votes)
                if s > best + 1e-9:
                    best, bias = s, trial
    return bias


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--member", required=True, help="a member record's name (experiments/members/NAME)")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--out", type=Path, help="default: experiments/results/class_prior/<member>.json")
    args = ap.parse_args()
    member = load_member(f"member:{args.member}")
    dm = FER2013DataModule(args.root, cache_dir="~/.cache/emotion", num_workers=0, ferplus=str(SHIPPED_VOTES))
    dm.setup()
    probs, votes = member.probs("val", *dm.arrays["val"]), dm.votes("val")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(probs))
    halves = (order[: len(order) // 2], order[len(order) // 2:])
    held_out = {}
    for shrink in SHRINKS:
        scores = [rule_score(adjust(probs[halves[1 - k]], fit(probs[halves[k]], votes[halves[k]]) * shrink),
                             votes[halves[1 - k]]) for k in (0, 1)]
        held_out[shrink] = round(float(np.mean(scores)), 4)
    shrink = max(held_out, key=lambda s: (held_out[s], -abs(s - 1)))
    bias = fit(probs, votes) * shrink
    before, after = crowd_agreement(probs, votes), crowd_agreement(adjust(probs, bias), votes)
    record = {"member": args.member, "class_names": member.info["class_names"],
              "bias": [round(float(b), 4) for b in bias],
              "shrink": shrink, "held_out_rule_score_by_shrink": held_out,
              "publictest_before": {k: round(before[k], 4) for k in ("acc", "macro_recall", "neutral_recall",
                                                                    "sad_false_alarms")},
              "publictest_after (optimistic: fitted here)": {k: round(after[k], 4) for k in ("acc", "macro_recall",
                                                                                           "neutral_recall",
                                                                                           "sad_false_alarms")},
              "member_tta": member.info["probs_tta"]["val"], "command": "python " + " ".join(sys.argv)}
    out = args.out or ROOT / "experiments" / "results" / "class_prior" / f"{args.member}.json"
    write_json(out, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
