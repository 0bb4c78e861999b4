"""Record a finished run (or a bundled model) as an ensemble member that outlives the machine.

    python experiments/make_member.py outputs/train/runs/<run> --name vgg_ferplus_seed42 [--weights]
    python experiments/make_member.py default --name bundled_default        # a bundled model as it ships

Writes ``experiments/members/<name>/`` (see :mod:`emotion.reporting.members`): ``member.json`` (what it is,
the command and resolved config that made it, its FER2013 and FER+-crowd scores on PublicTest and
PrivateTest), ``probs.npz`` (fp16 probabilities on every FER2013 face: Training flip-averaged, PublicTest
and PrivateTest with the TTA its run chose on PublicTest) and, with ``--weights``, ``model/`` (fp16
safetensors, loadable with ``load_model``). The run's PrivateTest score is the one it read when it
finished; the probabilities are those of the same checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from make_soft_labels import model_probs  # noqa: E402  (experiments/, the script's own folder)

from emotion.checkpoint import BUNDLED_MODELS, export_model, load_model  # noqa: E402
from emotion.data.datamodule import FER2013DataModule  # noqa: E402
from emotion.data.sources.ferplus import SHIPPED_VOTES  # noqa: E402
from emotion.reporting.agreement import crowd_agreement  # noqa: E402
from emotion.reporting.members import MEMBERS_DIR, WEIGHTS_DIR, write_member  # noqa: E402

#: What a member's model.json keeps of its run's metrics.json (the layout emotion.export writes).
RUN_KEYS = ("val", "test", "tta", "tta_val_acc", "epochs", "best_epoch", "wall_time_s", "device", "precision")


def protocol_of(config: dict[str, Any], recorded: str | None = None) -> str:
    """Which labels taught the run, in the words of the results tables: what the run recorded (runs since
    init_from record theirs), else read off its config."""
    if recorded and "started from the weights" in recorded:
        return f"{recorded}; from scratch"
    data = config.get("data", {})
    if str(data.get("_target_", "")).endswith("FERPlusDataModule"):
        return f"FER+ ({data.get('mode')}, 8 classes), from scratch"
    soft = data.get("soft_labels")
    if soft == "ferplus":
        return "FER2013 labels + FER+ votes, from scratch"
    if soft:
        return "FER2013 labels + a teacher's probabilities (from FER2013 labels), from scratch"
    return "FER2013 labels only, from scratch"


def _exported_protocol(meta: dict[str, Any]) -> str:
    if meta.get("protocol"):
        return meta["protocol"]
    if "ferplus" in str(meta.get("train_command", "")):
        return "FER2013 labels + FER+ votes, from scratch"
    if meta["hparams"].get("distill"):
        return "FER2013 labels + a teacher's probabilities (from FER2013 labels), from scratch"
    return "FER2013 labels only, from scratch"


def describe(source: str) -> tuple[str, dict[str, Any]]:
    """The checkpoint to record and what its run says about it: a run folder, a bundled model's name, or an
    exported model folder (``model.json``)."""
    folder = BUNDLED_MODELS.get(source) or (Path(source) if (Path(source) / "model.json").is_file() else None)
    if folder is not None:
        meta = json.loads((folder / "model.json").read_text())
        m = meta.get("metrics", {})
        return source, {"command": meta.get("train_command"), "git_commit": meta.get("git_commit"),
                        "tta": m.get("tta"), "fer2013": {"val": _acc(m.get("val")), "test": _acc(m.get("test"))},
                        "epochs": m.get("epochs"), "wall_time_s": m.get("wall_time_s"), "device": m.get("device"),
                        "protocol": _exported_protocol(meta), "class_bias": meta.get("class_bias"),
                        "bundled" if source in BUNDLED_MODELS else "exported": source}
    run = Path(source)
    metrics = json.loads((run / "metrics.json").read_text())
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    ckpt = metrics["checkpoint"]
    if not Path(ckpt).is_absolute() and not Path(ckpt).is_file():
        ckpt = str(run / "checkpoints" / Path(ckpt).name)
    return ckpt, {"command": metrics.get("command"), "git_commit": metrics.get("git_commit"), "tta": metrics["tta"],
                  "tta_val_acc": metrics.get("tta_val_acc"),
                  "fer2013" if "FERPlus" not in str(config["data"].get("_target_")) else "ferplus":
                      {"val": _acc(metrics.get("val")), "test": _acc(metrics.get("test"))},
                  "epochs": metrics.get("epochs"), "best_epoch": metrics.get("best_epoch"),
                  "wall_time_s": metrics.get("wall_time_s"), "device": metrics.get("device"),
                  "protocol": protocol_of(config, metrics.get("protocol")), "config": config,
                  "run_metrics": {k: metrics.get(k) for k in RUN_KEYS}}


def _update_model_json(folder: Path, probs: dict, class_names: list[str], tta: str) -> None:
    """Write this export's own FER2013 scores into its model.json ``metrics`` (an export whose logits were
    changed, by a class bias say, no longer scores what its training run measured; the run's figures are
    kept under ``run_metrics``)."""
    from emotion.io import write_json
    from emotion.reporting.record import split_metrics

    path = folder / "model.json"
    meta = json.loads(path.read_text())
    run = meta.get("metrics", {})
    k = len(class_names)
    new = {split: split_metrics(np.bincount(labels.astype(int) * k + p.argmax(1), minlength=k * k).reshape(k, k),
                                class_names)
           for split, (p, _, labels) in probs.items() if split in ("val", "test")}
    meta["run_metrics"] = meta.get("run_metrics") or run
    meta["metrics"] = {**run, **new, "tta": tta, "precision": "bf16-mixed",
                       "measured_by": "python " + " ".join(sys.argv)}
    write_json(path, meta)


def _acc(split: dict | None) -> dict | None:
    return None if not split else {k: split[k] for k in ("n", "acc", "f1_macro", "per_class_acc") if k in split}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="a finished run's folder (with metrics.json), or a bundled model's name")
    ap.add_argument("--name", required=True, help="the member's folder name under experiments/members/")
    ap.add_argument("--weights", action="store_true", help="also keep its fp16 weights (members worth shipping)")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--members", type=Path, default=MEMBERS_DIR)
    ap.add_argument("--update-model-json", action="store_true",
                    help="an exported folder: write its own FER2013 scores into its model.json metrics")
    args = ap.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    ckpt, info = describe(args.source)
    model = load_model(ckpt, device="cpu")
    dm = FER2013DataModule(args.root, cache_dir="~/.cache/emotion", num_workers=0, ferplus=str(SHIPPED_VOTES))
    dm.setup()
    tta = info["tta"] if info["tta"] in ("none", "flip", "tencrop") else "none"
    probs, crowd = {}, {}
    for split in ("train", "val", "test"):
        images, labels = dm.arrays[split]
        p = model_probs(model, images, "flip" if split == "train" else tta)
        probs[split] = (p, images, labels)
        if split != "train":
            crowd[split] = crowd_agreement(p, dm.votes(split), labels)
    hp = model.hparams
    record = {"arch": hp["arch"], "params": int(sum(t.numel() for t in model.parameters())),
              "input_size": hp.get("input_size", 48), "class_names": list(hp.get("class_names") or []), **info,
              "ferplus_crowd": crowd, "probs_tta": {"train": "flip", "val": tta, "test": tta},
              "data_root": Path(args.root).name, "seconds_to_record": round(time.perf_counter() - start, 1),
              "record_command": "python " + " ".join(sys.argv)}
    out = args.members / args.name
    if args.weights:
        if "bundled" in info or "exported" in info:
            raise SystemExit(f"{args.source} is an exported model already: its member needs no --weights")
        # As emotion.export lays model.json out (metrics: the run's own record), plus the crowd's scores;
        # no temperature is fitted: FER2013's labels are not what a crowd-taught model should be calibrated to.
        export_model(ckpt, out / WEIGHTS_DIR, dtype=torch.float16, source_checkpoint=Path(ckpt).name,
                     train_command=record["command"], git_commit=record["git_commit"], protocol=record["protocol"],
                     metrics={**record["run_metrics"], "ferplus_crowd": crowd}, evaluations=[], temperature=1.0)
    write_member(out, record, probs)
    if args.update_model_json:
        _update_model_json(Path(args.source), probs, list(hp.get("class_names") or []), tta)
    summary = {s: {k: round(v, 4) for k, v in crowd[s].items() if isinstance(v, float)} for s in crowd}
    print(json.dumps({"member": str(out), "protocol": record["protocol"], "crowd": summary}, indent=2))


if __name__ == "__main__":
    main()
