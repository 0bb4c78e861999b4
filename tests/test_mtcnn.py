"""Our MTCNN against facenet-pytorch's own, its resampling against F.interpolate, and the detection check."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from emotion.config import ASSETS_DIR
from emotion.inference import MTCNN_MIN_FACE, FaceDetector
from emotion.inference.detection.mtcnn import MTCNN, area_resample, area_resize, integral_image
from experiments.detection_check import CANVAS_SIZES, Before, check, load_faces, make_canvas
from tests.helpers import SAMPLE_PHOTO

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def canvases() -> list:
    """One composite of each canvas size: sample faces from 24 to 192 px among hard negatives."""
    rng = np.random.default_rng(0)
    faces = load_faces(ASSETS_DIR / "fer2013_sample")
    return [make_canvas(faces, size, rng) for size in CANVAS_SIZES]


def test_integral_image_is_exact():
    x = torch.randint(0, 256, (97, 131, 3), dtype=torch.uint8)
    want = np.zeros((98, 132, 3), np.int64)
    want[1:, 1:] = x.numpy().astype(np.int64).cumsum(0).cumsum(1)
    assert np.array_equal(integral_image(x).numpy(), want)


@pytest.mark.parametrize("size", [(24, 24), (48, 48), (13, 29)])
def test_area_resample_is_interpolate_area(size):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (97, 131, 3), dtype=torch.uint8, generator=g)
    sat = integral_image(x)
    # Windows of every kind: whole image, at the edges, smaller than the output (upsampled), thin.
    windows = [(0, 97, 0, 131), (0, 10, 0, 7), (90, 97, 120, 131), (5, 6, 3, 90), (20, 80, 30, 95), (1, 3, 1, 3)]
    y0, y1, x0, x1 = (torch.tensor(v) for v in zip(*windows))
    got = area_resample(sat, y0, y1, x0, x1, *size)
    assert got.shape == (len(windows), 3, *size)
    image = x.permute(2, 0, 1)[None].float()
    for k, (a, b, c, d) in enumerate(windows):
        want = F.interpolate(image[:, :, a:b, c:d], size=size, mode="area")[0]
        assert (got[k] - want).abs().max() < 1e-3
    one = area_resample(sat, y0[:1], y1[:1], x0[:1], x1[:1], *size)  # the single-window (pyramid) path
    assert (one[0] - F.interpolate(image, size=size, mode="area")[0]).abs().max() < 1e-3
    level = area_resize(sat, *size)  # the pyramid's own path: the same values, to the bit
    assert level.shape == (1, 3, *size) and level.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(level, one)


def same_detections(ours, boxes, scores, points) -> None:
    scores = np.asarray(scores, np.float64)
    assert len(ours.scores) == len(scores) > 0
    assert np.abs(ours.boxes - np.asarray(boxes, np.float64)).max() < 0.05
    assert np.abs(ours.scores - scores).max() < 1e-4
    assert np.abs(ours.landmarks - np.asarray(points, np.float64)).max() < 0.05


def test_same_faces_as_facenet_mtcnn(canvases):
    FacenetMTCNN = pytest.importorskip("facenet_pytorch", reason="facenet-pytorch is not installed").MTCNN  # noqa: N806

    theirs = FacenetMTCNN(keep_all=True, select_largest=False, post_process=False, min_face_size=20)
    ours = MTCNN()
    for image in [Image.open(SAMPLE_PHOTO).convert("RGB")] + [c.image for c in canvases]:
        same_detections(ours.detect(np.asarray(image), 20), *theirs.detect(image, landmarks=True))
    image = canvases[0].image  # a larger smallest face: facenet's pyramid for it, our fewer levels
    same_detections(ours.detect(np.asarray(image), 40), *theirs.__class__(
        keep_all=True, select_largest=False, post_process=False, min_face_size=40).detect(image, landmarks=True))


def test_pyramid_starts_at_the_level_nearest_to_min_face():
    m = MTCNN.__new__(MTCNN)
    m.factor = 0.709
    full = m.scales(630, 1200, 20)
    assert full == m.scales(630, 1200, 20, anchor=20)  # facenet's own pyramid
    assert 12 / full[0] == 20 and min(630, 1200) * full[-1] >= 12 > min(630, 1200) * full[-1] * 0.709
    for min_face in (23, 24, 30, 39.4, 48, 56.1, 100):
        levels = m.scales(630, 1200, min_face, anchor=20)
        assert levels == full[len(full) - len(levels):]  # the 20-px pyramid's own levels, its coarse end
        first = 12 / levels[0]
        assert abs(math.log(first / min_face)) <= -math.log(0.709) / 2 + 1e-9  # within half a step


def test_min_face_for_the_photo():
    d = FaceDetector()
    steps = [MTCNN_MIN_FACE * 0.709 ** -k for k in range(4)]  # 20, 28.2, 39.8, 56.1
    assert d.min_face_for((1200, 630)) == pytest.approx(steps[3])  # 630 / 12 = 52.5 → capped at 48 → 56.1
    assert d.min_face_for((4000, 3000)) == pytest.approx(steps[3])
    assert d.min_face_for((640, 480)) == pytest.approx(steps[2])  # 40
    assert d.min_face_for((400, 300)) == pytest.approx(steps[1])  # 25
    assert d.min_face_for((160, 120)) == pytest.approx(steps[0])  # 10, never below MTCNN's 20
    assert FaceDetector(min_face=33).min_face_for((1200, 630)) == 33


def test_detection_check_loses_no_face(canvases):
    """The gate of experiments/detection_check.py on four composites: with the whole pyramid no face
    that facenet's MTCNN found is lost, and the default loses none it searches for."""
    pytest.importorskip("facenet_pytorch", reason="facenet-pytorch (the reference) is not installed")
    dets = {"before": Before(), "min_face=20": FaceDetector(min_face=20), "default": FaceDetector()}
    result = check(canvases, dets)
    assert result["found"]["before"] >= 30  # the check checks something
    assert result["found"]["min_face=20"] == result["found"]["before"]
    assert result["lost_min_face_20"] == 0
    assert result["lost_default_at_or_above_floor"] == 0
    big = [r for r in result["by_size"] if r["size"] >= 64]
    assert sum(r["default_found"] for r in big) == sum(r["before_found"] for r in big) > 0
    assert result["false_positives"]["default"] <= result["false_positives"]["before"] + 1


def test_shipped_nets_are_facenets_own_tensor_for_tensor():
    """emotion/assets/mtcnn holds facenet-pytorch's weights (so a plain pip install detects faces
    without it); the reference package, where installed (make install), has the very same tensors."""
    facenet = pytest.importorskip("facenet_pytorch.models.mtcnn", reason="facenet-pytorch is not installed")
    from emotion.inference.detection.mtcnn_nets import load_nets

    for ours, theirs in zip(load_nets(), (facenet.PNet(), facenet.RNet(), facenet.ONet())):
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        x = torch.rand(2, 3, 48, 48) if type(ours).__name__ == "ONet" else torch.rand(2, 3, 24, 24)
        for o, t in zip(ours(x), theirs(x)):
            assert torch.equal(o, t)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_is_torchvisions_exactly(threshold):
    """Our NMS (no torchvision import at start-up, #33) keeps the very boxes torchvision's does, in its order,
    ties and empty boxes included."""
    from torchvision.ops import nms as tv_nms

    from emotion.inference.detection.mtcnn_nets import nms, nms_numpy

    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 300, 2000):
        xy = rng.uniform(0, 500, (n, 2)).astype(np.float32)
        wh = rng.uniform(0, 80, (n, 2)).astype(np.float32)
        wh[: n // 10] = 0  # some empty boxes
        boxes = torch.from_numpy(np.concatenate([xy, xy + wh], 1))
        scores = torch.from_numpy(rng.choice(np.linspace(0.6, 1, 50), n).astype(np.float32))  # many ties
        want = tv_nms(boxes, scores, threshold)
        assert torch.equal(nms(boxes, scores, threshold), want) and torch.equal(nms_numpy(boxes, scores, threshold),
                                                                                want), n


def test_refine_finds_a_moved_face_again_and_nothing_where_there_is_none():
    """A track's next box, off by 12 % of the face, is put back on the face by O-Net alone; a box on
    plain background is found empty (score 0), and keeps its place."""
    rgb = np.asarray(Image.open(SAMPLE_PHOTO).convert("RGB"))
    mtcnn = MTCNN()
    found = mtcnn.detect(rgb, 20)
    assert len(found) >= 2
    side = found.boxes[:, 2:3] - found.boxes[:, 0:1]
    moved = found.boxes + np.hstack([0.12 * side, -0.12 * side, 0.12 * side, -0.12 * side])
    again = mtcnn.refine(rgb, moved)
    assert (again.scores > 0.9).all()
    for a, b in zip(again.boxes, found.boxes):  # O-Net's box, from another window: close, not equal
        ix, iy = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
        inter = max(ix, 0) * max(iy, 0)
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        assert inter / union > 0.7  # 0.74 for the face cut by the photo's top edge
    assert np.median(np.abs(again.landmarks - found.landmarks)) < 0.05 * side.min()
    grey = np.full((240, 320, 3), 127, np.uint8)
    empty = mtcnn.refine(grey, np.array([[100.0, 80.0, 160.0, 140.0]]))
    assert empty.scores.tolist() == [0.0] and empty.boxes.tolist() == [[100.0, 80.0, 160.0, 140.0]]
    assert len(mtcnn.refine(rgb, np.zeros((0, 4)))) == 0


def test_the_allocator_keeps_freed_memory_where_glibc_runs_it():
    """A detector tells glibc to keep freed blocks (emotion.inference.native.keep_freed_memory); the
    opt-out leaves it as it is. Run in a fresh interpreter: the setting is once per process."""
    import platform
    import subprocess
    import sys

    code = ("from emotion.inference.native import keep_freed_memory as k; "
            "from emotion.inference.detection import FaceDetector; FaceDetector(); print(k())")
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(glibc)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "EMOTION_KEEP_FREED_MEMORY": "0"})
    assert off.stdout.strip() == "False"
