"""Where a photo's time goes, and the levers for MTCNN that #33 asked to measure, those that lost included.

    python experiments/bench_mtcnn_levers.py [--photo ../shared/photos/group_of_six.jpg] [--repeats 15]

First the stages of ``MTCNN.detect`` at the default search (faces from 1/12 of the photo's shorter side,
the pyramid anchored at MTCNN's 20 px, as ``FaceDetector`` lays it out): how many windows each net sees
and its share of the time. Then each net on exactly those windows (the photo's own pyramid levels and
candidate windows, captured from one detect call), three ways, taking turns, median of ``--repeats``:

* torch fp32, channels-last, in chunks of 64 windows (what ships);
* torch under bf16 autocast (where the CPU has native bf16: AVX-512 BF16 or AMX);
* ONNX Runtime (the nets exported to ONNX, one session each, the same thread count);
* ``torch.compile`` (inductor, dynamic shapes; its compile time on the first call is reported apart).

Each lever's largest output difference from fp32 is reported beside its time: a face score moved across
a stage's threshold changes which faces are found. Then P-Net's levels one by one against all of them
packed into one image (one call instead of one per level), and the photo's own steps
(``FaceEmotionPredictor.__call__``): decoding, detection, cutting the faces (one after another, and on two
threads straight after a detection, as the predictor would), classification; and the candidate windows'
resampling with advanced indexing (before) against ``index_select`` (shipped). Writes
``experiments/results/bench_mtcnn_levers.{json,md}``.
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

    compiled = torch.compile(mtcnn._pnet if name == "pnet" else net, dynamic=True)
    if name == "pnet":
        def inductor():
            return [torch.cat([o.flatten(1) for o in compiled(x)], 1) for x in inputs]
    else:
        def inductor():
            return [torch.cat([o.flatten(1) for o in M._batched(compiled, x)], 1) for x in inputs]

    return {"torch fp32 (shipped)": fp32, "torch bf16 autocast": bf16, "ONNX Runtime": onnx,
            "torch.compile (inductor)": inductor}


def pack(levels: list[torch.Tensor], gap: int = 12) -> torch.Tensor:
    """The pyramid's levels side by side in one image, in shelves as wide as the finest level, ``gap`` px
    apart (P-Net's window is 12 px, so no output reads two levels)."""
    width = levels[0].shape[3]
    places, x, y, shelf = [], 0, 0, 0
    for lv in levels:
        h, w = lv.shape[2:]
        if x and x + w > width:
            x, y, shelf = 0, y + shelf + gap, 0
        places.append((y, x))
        x, shelf = x + w + gap, max(shelf, h)
    canvas = torch.zeros(1, 3, y + shelf, width).contiguous(memory_format=torch.channels_last)
    for (y, x), lv in zip(places, levels):
        canvas[:, :, y:y + lv.shape[2], x:x + lv.shape[3]] = lv
    return canvas


def timed_turns(ways: dict, repeats: int) -> dict[str, float]:
    """Median ms of each callable, the ways taking turns after a warm-up."""
    for fn in ways.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(repeats):
        for k, fn in ways.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def advanced_indexing_resample(sat, y0, y1, x0, x1, out_h, out_w):
    """``area_resample`` as it was before session 16: the corners read by advanced indexing."""
    ylo, yhi = M._bins(y0, y1 - y0, out_h)
    xlo, xhi = M._bins(x0, x1 - x0, out_w)
    rows = torch.stack([yhi, ylo])[:, None, :, :, None] * sat.shape[1]
    cols = torch.stack([xhi, xlo])[None, :, :, None, :]
    c = sat.view(-1, sat.shape[2])[rows + cols]
    total = c[0, 0] - c[1, 0] - c[0, 1] + c[1, 1]
    area = ((yhi - ylo)[:, :, None] * (xhi - xlo)[:, None, :]).float()
    return (total.float() / area[..., None]).permute(0, 3, 1, 2)


def photo_steps(photo: str, repeats: int) -> tuple[dict[str, float], dict[str, float], bool]:
    """The predictor's steps on ``photo`` (median ms, taking turns), the windows' resampling two ways,
    and whether the two ways agree to the bit."""
    from concurrent.futures import ThreadPoolExecutor

    from emotion.data.preprocess import to_fer_face
    from emotion.inference import FaceEmotionPredictor, load_image
    from emotion.inference.detection.crop import crop_face

    predictor = FaceEmotionPredictor.from_checkpoint(device="cpu")
    rgb, _ = load_image(photo)
    det, faces = predictor.find_faces(rgb)
    pool = ThreadPoolExecutor(2)

    def threaded():  # straight after a detection, as in the predictor: torch's threads have just run
        found = predictor.detector(rgb)
        gray = rgb.convert("L")
        start = time.perf_counter()
        list(pool.map(lambda i: to_fer_face(crop_face(gray, found.boxes[i], found.landmarks[i],
                                                      margin=predictor.margin, align=predictor.align)),
                      range(len(found))))
        return time.perf_counter() - start

    def serial():
        found = predictor.detector(rgb)
        start = time.perf_counter()
        predictor.faces(rgb, found)
        return time.perf_counter() - start

    steps = timed_turns({"whole photo (`predictor(path)`)": lambda: predictor(photo),
                         "decode (`load_image`)": lambda: load_image(photo),
                         "detect": lambda: predictor.detector(rgb),
                         f"classify {len(faces)} faces": lambda: predictor.classify(faces)}, repeats)
    cut: dict[str, list[float]] = {"one after another (shipped)": [], "on 2 threads": []}
    for _ in range(repeats):
        cut["one after another (shipped)"].append(serial())
        cut["on 2 threads"].append(threaded())
    for k, v in cut.items():
        steps[f"cut {len(faces)} faces, {k}"] = 1000 * statistics.median(v)
    pool.shutdown()

    calls = []
    shipped = M.area_resample
    M.area_resample = lambda *a: calls.append(a) or shipped(*a)
    try:
        predictor.detector(rgb)
    finally:
        M.area_resample = shipped
    same = all(torch.equal(shipped(*a), advanced_indexing_resample(*a)) for a in calls)
    resample = timed_turns({"advanced indexing (before)": lambda: [advanced_indexing_resample(*a) for a in calls],
                            "index_select (shipped)": lambda: [shipped(*a) for a in calls]}, repeats)
    return steps, resample, same


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

    rows, stages, compile_s = [], [], {}
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        for name in ("pnet", "rnet", "onet"):
            inputs = seen[name]
            ways = runners(mtcnn, name, inputs, Path(tmp))
            ref = ways["torch fp32 (shipped)"]()
            start = time.perf_counter()
            ways["torch.compile (inductor)"]()
            compile_s[name] = time.perf_counter() - start
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

        levels = seen["pnet"]
        canvas = pack(levels)
        per_level = timed_turns({i: (lambda x=x: mtcnn._pnet(x)) for i, x in enumerate(levels)}, args.repeats)
        packed = timed_turns({"packed": lambda: mtcnn._pnet(canvas),
                              "one by one": lambda: [mtcnn._pnet(x) for x in levels]}, args.repeats)
    steps, resample, resample_same = photo_steps(args.photo, args.repeats)

    machine = machine_name()
    nets_ms = sum(s["ms"] for s in stages)
    md = [f"MTCNN's stages, the levers for its nets and the photo's steps "
          f"(`python experiments/bench_mtcnn_levers.py`); {machine}, "
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
    md += ["", "`torch.compile`'s first call (compiling): "
           + ", ".join(f"{k} {v:.0f} s" for k, v in compile_s.items()) + ".", "",
           "P-Net's levels one by one, and all of them packed into one image "
           f"({canvas.shape[3]}×{canvas.shape[2]}, {canvas.shape[2] * canvas.shape[3]} px against "
           f"{sum(x.shape[2] * x.shape[3] for x in levels)} px in the levels):", "",
           "| level | size | ms |", "|---:|---|---:|"]
    md += [f"| {i} | {x.shape[3]}×{x.shape[2]} | {per_level[i]:.2f} |" for i, x in enumerate(levels)]
    md += [f"| all, one by one | | {packed['one by one']:.2f} |", f"| all, packed | | {packed['packed']:.2f} |",
           "", f"The photo's steps (`FaceEmotionPredictor`, default settings, {Path(args.photo).name}):", "",
           "| step | ms |", "|---|---:|"]
    md += [f"| {k} | {v:.1f} |" for k, v in steps.items()]
    md += ["", "The candidate windows' resampling (R-Net's and O-Net's, one detect call; "
           f"the same values to the bit: {'yes' if resample_same else 'NO'}):", "", "| way | ms |", "|---|---:|"]
    md += [f"| {k} | {v:.2f} |" for k, v in resample.items()]
    write_results(args.out, {"machine": machine, "photo": Path(args.photo).name, "threads": args.threads,
                             "detect_ms": whole, "stages": stages, "levers": rows, "compile_s": compile_s,
                             "pnet_levels_ms": [per_level[i] for i in range(len(levels))],
                             "pnet_one_by_one_ms": packed["one by one"], "pnet_packed_ms": packed["packed"],
                             "photo_steps_ms": steps, "window_resample_ms": resample,
                             "window_resample_same": resample_same}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
