"""Teacher probabilities for the FER2013 training faces, for a distilled student (``model.distill``).

    python experiments/make_soft_labels.py --out experiments/results/soft_labels/bundled_flip.npz \
        [--checkpoint a.ckpt --checkpoint b/ ...] [--member NAME ...] [--tta flip] [--root ../shared/data/fer2013]

Each teacher sees the unaugmented training faces at its own input size; the members' probabilities
are averaged (the ensemble the student learns from). ``--member NAME`` takes a committed member record's
Training probabilities (``experiments/members/NAME``, flip-averaged when it was recorded) instead of
running a model, so an ensemble's student needs none of its teachers on disk. Only Training faces are
read: PublicTest and PrivateTest stay untouched. No checkpoint and no member: the bundled model teaches.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.checkpoint import load_model  # noqa: E402
from emotion.data.datamodule import FaceDataset, FER2013DataModule  # noqa: E402
from emotion.data.soft_labels import save_soft_labels  # noqa: E402
from emotion.models import predict_proba  # noqa: E402
from emotion.reporting.members import load_member  # noqa: E402


def teacher_probs(path: str | None, dm: FER2013DataModule, tta: str, batch: int) -> np.ndarray:
    return model_probs(load_model(path, device="cpu"), dm.arrays["train"][0], tta, batch)


def model_probs(model, images: np.ndarray, tta: str, batch: int = 256) -> np.ndarray:
    """A loaded model's probabilities on unaugmented ``images``, at its own input size, in bf16."""
    ds = FaceDataset(images, np.zeros(len(images)), model.hparams.input_size)
    out = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for start in range(0, len(ds), batch):
            x = torch.stack([ds[i][0] for i in range(start, min(start + batch, len(ds)))])
            out.append(predict_proba(model.model, x, tta).float().numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="a teacher (.ckpt or exported folder); repeat for an ensemble")
    ap.add_argument("--member", action="append", default=[],
                    help="a committed member record (experiments/members/NAME) as a teacher; repeat for several")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--tta", default="flip", choices=["none", "flip"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    dm = FER2013DataModule(args.root, cache_dir="~/.cache/emotion", num_workers=0)
    dm.setup()
    images, labels = dm.arrays["train"]
    teachers = args.checkpoint or ([] if args.member else [None])
    start = time.perf_counter()
    probs = np.mean([teacher_probs(t, dm, args.tta, args.batch) for t in teachers]
                    + [load_member(m if Path(m).is_dir() else f"member:{m}").probs("train", images, labels)
                       for m in args.member], axis=0)
    seconds = time.perf_counter() - start
    names = [str(t) if t else "bundled" for t in teachers] + [f"member:{m}" for m in args.member]
    out = save_soft_labels(args.out, probs, images, labels, names)
    agree = float((probs.argmax(1) == labels).mean())
    info = {"teachers": names, "tta": args.tta, "faces": len(labels), "train_acc_of_teachers": round(agree, 4),
            "seconds": round(seconds, 1), "bytes": out.stat().st_size,
            "command": "python " + " ".join(sys.argv)}
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
