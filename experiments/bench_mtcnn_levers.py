"""Where a photo's detection time goes, and two levers for MTCNN's nets that #33 asked to measure (#33).

    python experiments/bench_mtcnn_levers.py [--photo ../shared/photos/group_of_six.jpg] [--repeats 15]

First the stages of ``MTCNN.detect`` at the default search (faces from 1/12 of the photo's shorter side,
the pyramid anchored at MTCNN's 20 px, as ``FaceDetector`` lays it out): how many windows each net sees
and its share of the time. Then each net on exactly those windows (the photo's own pyramid levels and
candidate windows, captured from one detect call), three ways, taking turns, median of ``--repeats``:

* torch fp32, channels-last, in chunks of 64 windows (what ships);
* torch under bf16 autocast (where the CPU has native bf16: AVX-512 BF16 or AMX);
* ONNX Runtime (the nets exported to ONNX, one session each, the same thread count).

Each lever's largest output difference from fp32 is reported beside its time: a face score moved across
a stage's threshold changes which faces are found. Writes ``experiments/results/bench_mtcnn_levers.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import emotion.inference.detection.mtcnn as M  # noqa: E402
from emotion.device import machine_name  # noqa: E402
from emotion.inference.detection.detector import FaceDetector  # noqa: E402
from emotion.io import write_results  # noqa: E402


def capture(mtcnn: M.MTCNN, rgb: np.ndarray, min_face: float, anchor: float) -> dict[str, list[torch.Tensor]]:
    """The inputs each net sees in one ``detect`` call: P-Net's pyramid levels, R-Net's and O-Net's windows."""
    seen: dict[str, list[torch.Tensor]] = {"pnet": [], "rnet": [], "onet": []}
    pnet, batched = mtcnn._pnet, M._batched

    def pnet_spy(x):
        seen["pnet"].append(x.clone())
        return pnet(x)

    def batched_spy(net, x, size=64):
        seen["rnet" if net is mtcnn.rnet else "onet"].append(x.clone())
        return batched(net, x, size)

    mtcnn._pnet, M._batched = pnet_spy, batched_spy
    try:
        mtcnn.detect(rgb, min_face=min_face, anchor=anchor)
    finally:
        mtcnn._pnet, M._batched = pnet, batched
    return seen


def runners(mtcnn: M.MTCNN, name: str, inputs: list[torch.Tensor], tmp: Path):
    """fp32 (as shipped), bf16 autocast and ONNX Runtime, each a callable over ``inputs``."""
    import onnxruntime as ort

    net = getattr(mtcnn, name)
    if name == "pnet":
        def fp32():
            return [torch.cat([o.flatten(1) for o in mtcnn._pnet(x)], 1) for x in inputs]
    else:
        def fp32():
            return [torch.cat([o.flatten(1) for o in M._batched(net, x)], 1) for x in inputs]

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return [o.float() for o in fp32()]

    path = tmp / f"{name}.onnx"
    example = inputs[0][:1].contiguous()
    torch.onnx.export(net, example, str(path), input_names=["x"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.inter_op_num_threads = 1
    # No spinning after a run: ORT's idle threads would otherwise take the cores from torch's next turn.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    arrays = [x.contiguous().numpy() for x in inputs]
    pnet_heads = name == "pnet"

    def onnx():
        outs = []
        for a in arrays:
            res = session.run(None, {"x": a})
            if pnet_heads:  # P-Net's own forward: (box regression, softmax) -> the shipped (reg, face prob)
                reg, prob = (torch.from_numpy(r) for r in res)
                res = [reg, prob[:, 1]]
            else:
                res = [torch.from_numpy(r) for r in res]
            outs.append(torch.cat([r.flatten(1) for r in res], 1))
        return outs

    return {"torch fp32 (shipped)": fp32, "torch bf16 autocast": bf16, "ONNX Runtime": onnx}


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", default=str(ROOT.parent / "shared" / "photos" / "group_of_six.jpg"))
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_mtcnn_levers.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    image = Image.open(args.photo).convert("RGB")
    detector = FaceDetector()
    mtcnn = detector.mtcnn
    # What the shipped detector asks MTCNN for on this photo (its copy, smallest face and pyramid anchor).
    calls = []
    detect = mtcnn.detect
    mtcnn.detect = lambda rgb, min_face, anchor: calls.append((rgb, min_face, anchor)) or detect(rgb, min_face, anchor)
    detector(image)
    mtcnn.detect = detect
    rgb, min_face, anchor = calls[0]
    h, w = rgb.shape[:2]
    for _ in range(3):
        mtcnn.detect(rgb, min_face=min_face, anchor=anchor)
    whole = median_ms(lambda: mtcnn.detect(rgb, min_face=min_face, anchor=anchor), args.repeats)
    seen = capture(mtcnn, rgb, min_face, anchor)

    rows, stages = [], []
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        for name in ("pnet", "rnet", "onet"):
            inputs = seen[name]
            ways = runners(mtcnn, name, inputs, Path(tmp))
            ref = ways["torch fp32 (shipped)"]()
            for fn in ways.values():  # warm-up
                fn()
            times: dict[str, list[float]] = {k: [] for k in ways}
            for _ in range(args.repeats):  # the ways take turns, so drift hits each alike
                for k, fn in ways.items():
                    start = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - start)
            base = 1000 * statistics.median(times["torch fp32 (shipped)"])
            windows = sum(len(x) for x in inputs)
            shape = "×".join(str(s) for s in inputs[0].shape[2:]) if name != "pnet" else f"{len(inputs)} levels"
            stages.append({"net": name, "windows": windows, "input": shape, "ms": base})
            for k, fn in ways.items():
                out = fn()
                diff = max(float((a - b).abs().max()) for a, b in zip(out, ref))
                ms = 1000 * statistics.median(times[k])
                rows.append({"net": name, "way": k, "ms": ms, "vs_shipped": ms / base, "max_abs_diff": diff})

    machine = machine_name()
    nets_ms = sum(s["ms"] for s in stages)
    md = [f"MTCNN's stages and two levers for its nets (`python experiments/bench_mtcnn_levers.py`); {machine}, "
          f"{args.threads} torch threads; {Path(args.photo).name} ({w}×{h}) at the default search (faces from "
          f"{min_face:.0f} px); median of {args.repeats} rounds, the ways taking turns.", "",
          f"One `detect` call: **{whole:.1f} ms**; the three nets on its inputs: {nets_ms:.1f} ms "
          f"(the rest: the summed-area table, resampling, NMS and box arithmetic).", "",
          "| net | what it sees | windows | ms (shipped) | share of detect |", "|---|---|---:|---:|---:|"]
    for s in stages:
        md.append(f"| {s['net']} | {s['input']} | {s['windows']} | {s['ms']:.1f} | {100 * s['ms'] / whole:.0f} % |")
    md += ["", "| net | way | ms | × shipped | largest output difference |", "|---|---|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['net']} | {r['way']} | {r['ms']:.1f} | {r['vs_shipped']:.2f}× | {r['max_abs_diff']:.1e} |")
    write_results(args.out, {"machine": machine, "photo": Path(args.photo).name, "threads": args.threads,
                             "detect_ms": whole, "stages": stages, "levers": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
