"""Export a trained checkpoint as weights only (safetensors) plus a JSON of what made it.

    python -m emotion.export CKPT OUT_DIR --train-metrics RUN/metrics.json \
        [--eval-metrics EVAL/metrics.json ...] [--calibrate-on FER2013_ROOT] [--onnx] [--fp16] [--class-bias FILE]

``--calibrate-on`` fits a softmax temperature on PublicTest (val) and reports the expected
calibration error on PrivateTest before and after; the predictor divides logits by it.
``--onnx`` also writes ``model.onnx`` (the same network for ONNX Runtime: ``--runtime onnx``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from emotion.checkpoint import ONNX_FILE, export_model, export_onnx, load_model
from emotion.errors import EmotionError, user_errors_exit
from emotion.training.calibration import expected_calibration_error, fit_temperature

__all__ = ["main"]


def _read_json(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EmotionError(f"can't read metrics file '{path}': {e}") from None


@torch.no_grad()
def _logits(model, images, labels, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    from emotion.data import to_model_input

    out = [model(to_model_input(images[i:i + batch], model.hparams.input_size)) for i in range(0, len(images), batch)]
    return torch.cat(out).float(), torch.as_tensor(labels.astype("int64"))


def calibrate(ckpt: str, root: str) -> dict[str, float]:
    """Fit the temperature on val; ECE on test before and after."""
    from emotion.data import FER2013DataModule
    from emotion.data.sources.cache import default_cache_dir

    model = load_model(ckpt, device="cpu")
    dm = FER2013DataModule(root=root, cache_dir=default_cache_dir())
    dm.setup()
    t = fit_temperature(*_logits(model, *dm.arrays["val"]))
    test_logits, test_labels = _logits(model, *dm.arrays["test"])
    return {
        "temperature": round(t, 4),
        "ece_test_before": round(expected_calibration_error(test_logits.softmax(1), test_labels), 4),
        "ece_test_after": round(expected_calibration_error((test_logits / t).softmax(1), test_labels), 4),
    }


def run(args: argparse.Namespace) -> Path:
    train = _read_json(args.train_metrics)
    meta: dict[str, Any] = {
        "source_checkpoint": Path(args.ckpt).name,
        "train_command": train.get("command"),
        "git_commit": train.get("git_commit"),
        "metrics": {k: train.get(k) for k in ("val", "test", "tta", "epochs", "best_epoch", "wall_time_s", "device",
                                              "precision")},
        "evaluations": [],
        "temperature": 1.0,
    }
    for m in map(_read_json, args.eval_metrics or []):
        split = "test" if "test" in m else "val"
        meta["evaluations"].append({"split": split, "tta": m.get("tta"), "acc": m[split]["acc"],
                                    "f1_macro": m[split]["f1_macro"], "command": m.get("command")})
    if args.calibrate_on:
        meta["calibration"] = calibrate(args.ckpt, args.calibrate_on)
        meta["temperature"] = meta["calibration"]["temperature"]
    bias = _read_json(args.class_bias)["bias"] if args.class_bias else None
    if args.class_bias:
        meta["class_bias_from"] = Path(args.class_bias).name
    out = export_model(args.ckpt, args.out_dir, dtype=torch.float16 if args.fp16 else None, class_bias=bias, **meta)
    if args.onnx:
        export_onnx(load_model(out, device="cpu"), out / ONNX_FILE)
    print(f"exported {args.ckpt} -> {out} (temperature {meta['temperature']}" + (", with ONNX)" if args.onnx else ")"))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emotion.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", help="a .ckpt written by emotion.train")
    ap.add_argument("out_dir", help="folder to write model.safetensors and model.json into")
    ap.add_argument("--train-metrics", required=True, help="the training run's metrics.json")
    ap.add_argument("--eval-metrics", nargs="*", help="metrics.json files written by emotion.evaluate")
    ap.add_argument("--calibrate-on", metavar="FER2013_ROOT", help="fit a temperature on this data's PublicTest")
    ap.add_argument("--onnx", action="store_true", help=f"also write {ONNX_FILE} for ONNX Runtime")
    ap.add_argument("--fp16", action="store_true", help="store the weights as fp16 (half the file; loaded into fp32)")
    ap.add_argument("--class-bias", metavar="FILE",
                    help="a JSON whose 'bias' (a value per class) is added to the logits "
                         "(experiments/fit_class_prior.py)")
    args = ap.parse_args(argv)
    user_errors_exit(lambda: run(args))


if __name__ == "__main__":
    main()
