"""Multi-face inference with the real MTCNN and a real (tiny) trained model: results, inputs, errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emotion.checkpoint import export_model, load_model
from emotion.data.classes import CLASS_NAMES
from emotion.errors import EmotionError
from emotion.inference import FaceEmotionPredictor, FaceResult, ImageResult, crop_face, eye_angle, load_image
from tests.helpers import (
    ROOT,
    SAMPLE_PHOTO,
    SHARED_FER,
    SHARED_PHOTOS,
    needs_bundled,
    needs_shared_fer,
    needs_shared_photos,
    png_header,
)

ASSETS = Path(__file__).resolve().parent / "assets"
SAMPLE_TILES = json.loads((ASSETS / "sample_faces.json").read_text())
TILE = 160  # side of each face tile in the sample photo (experiments/make_sample_photo.py)


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint) -> FaceEmotionPredictor:
    return FaceEmotionPredictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def sample_result(predictor) -> ImageResult:
    return predictor(SAMPLE_PHOTO)


def assert_valid(result: ImageResult) -> None:
    """Every face: box inside the image, probabilities a distribution over CLASS_NAMES, etc."""
    w, h = result.size
    for face in result.faces:
        assert isinstance(face, FaceResult)
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert 0.9 <= face.score <= 1.0
        assert len(face.landmarks) == 5 and all(len(p) == 2 for p in face.landmarks)
        assert list(face.probabilities) == list(CLASS_NAMES)
        assert math.isclose(sum(face.probabilities.values()), 1.0, abs_tol=1e-6)
        assert all(0.0 <= p <= 1.0 for p in face.probabilities.values())
        assert face.predicted in CLASS_NAMES and face.predicted == max(face.probabilities, key=face.probabilities.get)
        # A face is named, or held back with its reason.
        assert (face.label, face.uncertain) in ((face.predicted, None), ("uncertain", "quality"),
                                                ("uncertain", "confidence"))
        # The quality's size is the detector's box, which the result's box is clipped from.
        assert 0.0 <= face.quality.overall <= 1.0 and face.quality.size_px >= max(x2 - x1, y2 - y1) - 1e-6
        assert face.quality.score == face.score and face.quality.yaw is not None
        assert face.crop is not None and face.crop.shape == (48, 48) and face.crop.dtype == np.uint8


def tile_of(face: FaceResult) -> int | None:
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    for t in SAMPLE_TILES:
        x, y = t["position"]
        if x <= cx < x + TILE and y <= cy < y + TILE:
            return t["tile"]
    return None


# -- the shipped photo -------------------------------------------------------------------
def test_sample_photo_every_face_found(sample_result):
    r = sample_result
    assert r.size == Image.open(SAMPLE_PHOTO).size and r.path == str(SAMPLE_PHOTO)
    assert len(r.faces) == len(SAMPLE_TILES) == 6
    assert sorted(tile_of(f) for f in r.faces) == list(range(6))  # one face per tile
    assert_valid(r)
    xs = [f.box[0] + f.box[2] for f in r.faces]
    assert xs == sorted(xs)  # left to right


def test_import_from_package_root():
    from emotion import FaceEmotionPredictor as P

    assert P is FaceEmotionPredictor


def test_same_result_for_path_pil_and_array(predictor, sample_result):
    img = Image.open(SAMPLE_PHOTO)
    for source in (img, np.asarray(img.convert("RGB"))):
        r = predictor(source)
        assert r.path in (None, str(SAMPLE_PHOTO))
        np.testing.assert_allclose([f.box for f in r.faces], [f.box for f in sample_result.faces], atol=1e-3)


@needs_shared_photos
def test_group_of_six_finds_six(predictor):
    r = predictor(SHARED_PHOTOS / "group_of_six.jpg")
    assert len(r.faces) == 6
    assert_valid(r)


def test_no_face_gives_empty_result(predictor):
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, 320)[None, :, None]
    img = np.clip(x + rng.normal(0, 8, (240, 320, 3)), 0, 255).astype(np.uint8)  # a noisy gradient
    r = predictor(img)
    assert r.faces == [] and r.size == (320, 240)
    assert r.to_dict()["faces"] == []
    assert predictor.annotate(img, r).size[0] > 320  # the figure still has its panel


def test_json_schema(sample_result):
    d = json.loads(json.dumps(sample_result.to_dict()))  # must survive JSON as is
    assert set(d) == {"path", "size", "frame", "time_s", "faces"}
    assert d["size"] == list(Image.open(SAMPLE_PHOTO).size) and d["frame"] is None and d["time_s"] is None
    for f in d["faces"]:
        assert set(f) == {"box", "score", "landmarks", "label", "predicted", "uncertain", "quality", "explanation",
                          "probabilities"}
        assert set(f["quality"]) == {"overall", "size_px", "sharpness", "yaw", "roll", "score"}
        assert f["predicted"] in CLASS_NAMES and f["explanation"] is None
        assert len(f["box"]) == 4 and all(isinstance(v, float) for v in f["box"])
        assert isinstance(f["score"], float)
        assert len(f["landmarks"]) == 5 and all(len(p) == 2 for p in f["landmarks"])
        assert f["label"] in (f["predicted"], "uncertain")
        assert list(f["probabilities"]) == list(CLASS_NAMES)
        assert math.isclose(sum(f["probabilities"].values()), 1.0, abs_tol=1e-5)


def test_annotate_draws_photo_and_panel(predictor, sample_result):
    fig = predictor.annotate(SAMPLE_PHOTO, sample_result)
    w, h = Image.open(SAMPLE_PHOTO).size
    assert fig.mode == "RGB" and fig.width > w and fig.height >= h
    assert len(np.unique(np.asarray(fig).reshape(-1, 3), axis=0)) > 50  # something was drawn


# -- options -------------------------------------------------------------------------------
def test_inference_imports_no_training_stack_and_warns_nothing(tmp_path):
    """Predicting (photos and crops, and an annotated figure) loads no Lightning, Hydra, OmegaConf or
    matplotlib, and no library warning reaches the user (#21 findings 3 and 8)."""
    import subprocess
    import sys

    crop = next((ROOT / "emotion/assets/fer2013_sample/test/happy").glob("*.jpg"))
    code = ("import sys; from emotion import FaceEmotionPredictor; "
            "p = FaceEmotionPredictor.from_checkpoint(device='cpu'); r = p(sys.argv[1]); p.annotate(sys.argv[1], r); "
            "FaceEmotionPredictor.from_checkpoint(device='cpu', faces_are_crops=True)(sys.argv[2]); "
            "heavy = ('lightning', 'pytorch_lightning', 'hydra', 'omegaconf', 'matplotlib'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('emotion.training')))")
    r = subprocess.run([sys.executable, "-W", "default", "-c", code, str(SAMPLE_PHOTO), str(crop)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"
    assert "Warning" not in r.stderr, r.stderr


def test_bf16_classifier_agrees_with_fp32(predictor, sample_result):
    faces = np.stack([f.crop for f in sample_result.faces])
    fp32 = FaceEmotionPredictor(predictor.model, bf16=False).classify(faces)
    bf16 = FaceEmotionPredictor(predictor.model, bf16=True).classify(faces)
    assert np.abs(fp32 - bf16).max() < 0.05  # bf16 keeps 8 bits of mantissa: probabilities move by ~1e-2
    assert (fp32.argmax(1) == bf16.argmax(1)).mean() >= 5 / 6


def test_options_tta_no_align_min_face(predictor, sample_result):
    model = predictor.model
    for p in (FaceEmotionPredictor(model, tta=True), FaceEmotionPredictor(model, tta="tencrop"),
              FaceEmotionPredictor(model, align=False)):
        r = p(SAMPLE_PHOTO)
        assert len(r.faces) == 6
        assert_valid(r)
    assert FaceEmotionPredictor(model, tta=True).tta == "flip" and FaceEmotionPredictor(model).tta == "none"
    with pytest.raises(EmotionError, match="tta='mirror'"):
        FaceEmotionPredictor(model, tta="mirror")
    # A larger min_face starts the pyramid higher: the larger faces come back (their boxes may move
    # by a few px, found from other levels' candidates), the smaller ones go.
    sizes = [max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in sample_result.faces]
    cut = (min(sizes) + max(sizes)) / 2
    big = FaceEmotionPredictor(model, min_face=round(cut))(SAMPLE_PHOTO).faces
    kept = [f for f, s in zip(sample_result.faces, sizes) if s >= round(cut)]
    assert 0 < len(big) == len(kept) < 6
    assert all(iou(a.box, b.box) > 0.9 for a, b in zip(big, kept))
    assert FaceEmotionPredictor(model, min_face=round(max(sizes)) + 1)(SAMPLE_PHOTO).faces == []
    assert len(FaceEmotionPredictor(model, min_face=20)(SAMPLE_PHOTO).faces) == 6  # MTCNN's whole pyramid


def test_exported_model_with_temperature(tiny_checkpoint, tmp_path, sample_result):
    folder = export_model(tiny_checkpoint, tmp_path / "exported", temperature=3.0)
    p = FaceEmotionPredictor.from_checkpoint(folder, device="cpu")
    assert p.temperature == 3.0
    r = p(SAMPLE_PHOTO)
    for hot, cool in zip(sample_result.faces, r.faces):
        assert cool.label == hot.label  # a temperature never changes the ranking …
        assert max(cool.probabilities.values()) <= max(hot.probabilities.values()) + 1e-6  # … only flattens


def test_large_photo_detected_on_downscaled_copy(predictor, sample_result):
    img = Image.open(SAMPLE_PHOTO).convert("RGB")
    big = img.resize((img.width * 4, img.height * 4), Image.Resampling.BICUBIC)  # 2688 px wide
    p = FaceEmotionPredictor(predictor.model)  # detection runs on a 1600-px copy
    r = p(big)
    assert r.size == big.size and len(r.faces) == 6
    for f, g in zip(r.faces, sample_result.faces):  # same faces, in original-image pixels
        assert iou([v / 4 for v in f.box], g.box) > 0.8


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


# -- crops ---------------------------------------------------------------------------------
def test_crop_size_margin_and_outside_boxes():
    img = Image.open(SAMPLE_PHOTO).convert("RGB")
    for margin in (-0.1, 0.0, 0.3):
        assert crop_face(img, (48, 48, 208, 208), margin=margin, align=False).size == (192, 192)
    # A box hanging over the corner: the missing part repeats edge pixels, never black.
    corner = np.asarray(crop_face(img, (-100, -100, 20, 20), align=False))
    assert corner.min() > 100
    assert crop_face(img, (5000, 5000, 5100, 5100), align=False).size == (192, 192)


def _dark_centroid(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(a < 100)
    return float(xs.mean()), float(ys.mean())


def test_crop_geometry_and_eye_alignment():
    """Two dots as eyes on a 25° line: the aligned crop puts them level, where FER frames eyes."""
    from PIL import ImageDraw

    img = Image.new("L", (400, 400), 255)
    left, right = (150.0, 200.0), (250.0, 200.0 + 100 * math.tan(math.radians(25)))
    draw = ImageDraw.Draw(img)
    for x, y in (left, right):
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=0)
    assert eye_angle([left, right]) == pytest.approx(25.0)
    cx, cy = (left[0] + right[0]) / 2, (left[1] + right[1]) / 2
    box = (cx - 100, cy - 100, cx + 100, cy + 100)
    points = [left, right, (cx, cy + 40), (cx - 30, cy + 70), (cx + 30, cy + 70)]
    a = np.asarray(crop_face(img, box, points, margin=0.0, align=True))  # 200 px → 192 px
    (lx, ly), (rx, ry) = _dark_centroid(a[:, :96]), _dark_centroid(a[:, 96:])
    assert abs(ly - ry) < 1.5 and abs(ly - 96) < 1.5  # level, through the centre
    assert abs((rx + 96) - lx - 0.96 * math.dist(left, right)) < 2  # distance kept (scaled)
    b = np.asarray(crop_face(img, box, points, margin=0.0, align=False))
    (_, ly), (_, ry) = _dark_centroid(b[:, :96]), _dark_centroid(b[:, 96:])
    assert ry - ly == pytest.approx(0.96 * (right[1] - left[1]), abs=1.5)  # untouched tilt


def test_alignment_with_mtcnn_landmarks(predictor):
    x, y = next(t["position"] for t in SAMPLE_TILES if t["class"] == "sad")
    face = Image.open(SAMPLE_PHOTO).convert("RGB").crop((x - 48, y - 48, x + TILE + 48, y + TILE + 48))
    tilted = face.rotate(-20, resample=Image.Resampling.BICUBIC, fillcolor=(228, 233, 238))
    det = predictor.detector(tilted)
    assert len(det) == 1 and abs(eye_angle(det.landmarks[0])) > 10
    aligned = crop_face(tilted, det.boxes[0], det.landmarks[0], margin=0.3, align=True)
    again = predictor.detector(aligned)
    assert len(again) == 1 and abs(eye_angle(again.landmarks[0])) < 5


# -- input formats -------------------------------------------------------------------------
def _modes(tmp_path: Path) -> dict[str, Path]:
    rgb = Image.open(SAMPLE_PHOTO).convert("RGB")
    gray = np.asarray(rgb.convert("L"))
    files = {}
    rgba = rgb.convert("RGBA")
    a = np.asarray(rgba).copy()
    background = np.all(np.abs(a[..., :3].astype(int) - (228, 233, 238)) < 6, axis=-1)
    a[background] = (0, 0, 0, 0)  # transparent black: dropping alpha instead of compositing → black
    files["RGBA"] = Image.fromarray(a, "RGBA")
    files["P"] = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=128)
    files["I;16"] = Image.fromarray(gray.astype(np.uint16) * 257)
    files["L"] = rgb.convert("L")
    paths = {}
    for mode, im in files.items():
        assert im.mode == mode
        paths[mode] = tmp_path / f"{mode.replace(';', '')}.png"
        im.save(paths[mode])
    return paths


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16", "L"])
def test_image_modes(predictor, tmp_path, mode):
    path = _modes(tmp_path)[mode]
    assert Image.open(path).mode == mode
    r = predictor(path)
    assert len(r.faces) == 6
    assert_valid(r)


def test_jpeg_pixels_are_pils(tmp_path):
    """Plain RGB JPEGs are decoded by torchvision's libjpeg-turbo (its compiled op): the very pixels PIL decodes."""
    from emotion.inference.native import torchvision_decode_jpeg

    assert torchvision_decode_jpeg() is not None  # torchvision is a dependency: the fast path is the one taken
    img = Image.open(SAMPLE_PHOTO).convert("RGB")
    for name, image, options in (("baseline.jpg", img, {}), ("progressive.jpg", img, {"progressive": True}),
                                 ("subsampled.jpg", img, {"subsampling": 2}), ("gray.jpg", img.convert("L"), {})):
        path = tmp_path / name
        image.save(path, quality=90, **options)
        with Image.open(path) as im:
            want = np.asarray(im.convert("RGB"))
        got, _ = load_image(path)
        assert got.mode == "RGB" and np.array_equal(np.asarray(got), want), name


def test_exif_orientation_applied(predictor, sample_result, tmp_path):
    img = Image.open(SAMPLE_PHOTO).convert("RGB")
    stored = img.transpose(Image.Transpose.ROTATE_90)  # pixels on their side …
    exif = Image.Exif()
    exif[0x0112] = 6  # … and the tag that tells viewers to turn them upright
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    r = predictor(path)
    assert r.size == img.size
    assert len(r.faces) == 6
    np.testing.assert_allclose([f.box for f in r.faces], [f.box for f in sample_result.faces], atol=6.0)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "folder", "bomb", "over_limit"])
def test_bad_inputs_raise_clear_errors(predictor, tmp_path, kind):
    if kind == "missing":
        path, words = tmp_path / "nope.jpg", "not found"
    elif kind == "text":
        path, words = tmp_path / "notes.jpg", "not an image"
        path.write_text("this is not a JPEG\n")
    elif kind == "truncated":
        path, words = tmp_path / "cut.jpg", "truncated"
        path.write_bytes(SAMPLE_PHOTO.read_bytes()[:4000])
    elif kind == "folder":
        path, words = tmp_path, "folder"
    elif kind == "bomb":  # 10 gigapixels in a few bytes: PIL's own guard, reported our way
        path, words = _write(tmp_path / "bomb.png", png_header(100_000, 100_000)), "decompression bomb"
    else:  # 132 MP: under PIL's error threshold, over ours; refused before any decoding
        path, words = _write(tmp_path / "huge.png", png_header(12_000, 11_000)), "decompression bomb"
    with pytest.raises(EmotionError) as err:
        predictor(path)
    msg = str(err.value)
    assert path.name in msg and words in msg and "\n" not in msg


def test_bad_arrays_and_types(predictor, tmp_path):
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(SAMPLE_PHOTO.read_bytes()[:4000])
    with pytest.raises(EmotionError, match="cut.jpg"):  # a lazily opened PIL image decodes late
        predictor(Image.open(cut))
    with pytest.raises(EmotionError, match="shape"):
        predictor(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(EmotionError, match="cannot read an image"):
        predictor(12345)
    with pytest.raises(EmotionError, match="MP"):
        load_image(SAMPLE_PHOTO, max_pixels=1000)
    # Odd but valid arrays: float in [0, 1], 16-bit, single channel.
    for arr in (np.full((60, 80), 0.5), np.full((60, 80, 1), 40000, np.uint16)):
        assert predictor(arr).faces == []


# -- the bundled model ---------------------------------------------------------------------

@needs_bundled
def test_bundled_model_predicts():
    p = FaceEmotionPredictor.from_checkpoint(device="cpu")
    r = p(SAMPLE_PHOTO)
    assert len(r.faces) == 6
    assert_valid(r)


@pytest.mark.slow
@needs_bundled
@needs_shared_fer
@pytest.mark.parametrize("name", ["default", "fast", "fer2013"])
def test_bundled_model_recorded_test_accuracy(tmp_path, name):
    """The accuracy in model.json is what each shipped model's weights score on PrivateTest today."""
    import torch

    from emotion.checkpoint import BUNDLED_MODELS
    from emotion.data import FER2013DataModule
    from emotion.models import predict_proba

    if not BUNDLED_MODELS[name].is_dir():
        pytest.skip(f"no bundled {name} model")
    model = load_model(name, device="cpu")
    metrics = model.meta.get("metrics") or {}
    recorded = metrics.get("test", {}).get("acc")
    assert recorded is not None, "model.json records no metrics.test.acc"
    dm = FER2013DataModule(root=str(SHARED_FER), cache_dir=str(tmp_path), batch_size=256, num_workers=0,
                           image_size=model.hparams.input_size)
    # As the training run measured it: with its test-time augmentation, in its precision.
    bf16 = metrics.get("precision") == "bf16-mixed"
    correct = total = 0
    for x, y in dm.test_dataloader():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            correct += int((predict_proba(model, x, metrics.get("tta") or "none").argmax(1) == y).sum())
        total += len(y)
    assert total > 3000
    assert abs(correct / total - recorded) < 0.002, (correct / total, recorded)


def test_one_image_path_for_the_dataset_reader_and_the_predictor(tmp_path):
    """The same RGBA/LA/P/I;16/EXIF-rotated files become identical 48×48 faces through the dataset
    reader (training, evaluation of a folder) and through the predictor (#21: they disagreed on alpha)."""
    from emotion.data.sources.fer2013 import _decode

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (64, 64), np.uint8)
    alpha = np.where(np.arange(64)[None, :] < 32, 0, 255).astype(np.uint8).repeat(64, 0)  # left half clear
    files = {
        "rgba_half_clear.png": Image.fromarray(np.dstack([grey, grey, grey, alpha]), "RGBA"),
        "rgba_all_clear.png": Image.fromarray(np.dstack([grey, grey, grey, np.zeros_like(grey)]), "RGBA"),
        "la.png": Image.fromarray(np.dstack([grey, alpha]), "LA"),
        "i16.png": Image.fromarray(grey.astype(np.uint16) * 257),
    }
    palette = Image.fromarray(grey, "L").convert("P")
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])
    files["p_transparent.png"] = palette
    for name, im in files.items():
        im.save(tmp_path / name)
    rotated = Image.fromarray(np.dstack([grey, grey // 2, grey]), "RGB")
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90° when shown
    rotated.save(tmp_path / "exif_rotated.jpg", exif=exif.tobytes())
    predictor = FaceEmotionPredictor.from_checkpoint(faces_are_crops=True)
    for path in sorted(tmp_path.iterdir()):
        dataset_face = _decode(str(path))
        rgb, _ = load_image(path)
        _, faces = predictor.find_faces(rgb)
        assert dataset_face is not None and faces.shape == (1, 48, 48)
        assert np.array_equal(dataset_face, faces[0]), path.name
    assert (_decode(str(tmp_path / "rgba_all_clear.png")) == 255).all()  # transparent reads as white
    assert (_decode(str(tmp_path / "la.png"))[:, :20] == 255).all()


def test_bulk_pipeline_gives_the_per_image_results_face_for_face(tmp_path):
    """#25: decoding and detection in worker processes, faces of many images in one batch, the same
    faces, boxes and labels as one image at a time (probabilities up to the batch's rounding)."""
    from emotion.inference.drivers.bulk import iter_bulk_results
    from emotion.inference.drivers.inputs import collect_inputs

    (tmp_path / "broken.jpg").write_bytes(SAMPLE_PHOTO.read_bytes()[:3000])
    for i, size in enumerate(((500, 350), (900, 620))):
        Image.open(SAMPLE_PHOTO).resize(size).save(tmp_path / f"photo_{i}.png")
    Image.open(SAMPLE_PHOTO).save(tmp_path / "sample.jpg")
    cases = [(FaceEmotionPredictor.from_checkpoint(device="cpu"), collect_inputs([str(tmp_path)])[0]),
             (FaceEmotionPredictor.from_checkpoint(device="cpu", faces_are_crops=True),
              collect_inputs([str(ROOT / "emotion/assets/fer2013_sample/test")])[0][:40])]
    for predictor, jobs in cases:
        items = list(iter_bulk_results(predictor, jobs, workers=2, batch_faces=16))
        assert [it.job for it in items] == jobs  # in input order
        for job, item in zip(jobs, items):
            if job.path.name == "broken.jpg":
                assert item.result is None and "truncated" in item.error
                continue
            alone = predictor(job.path)
            assert item.error is None and len(item.result.faces) == len(alone.faces) > 0
            for a, b in zip(alone.faces, item.result.faces):
                assert a.box == b.box and a.label == b.label and np.array_equal(a.crop, b.crop)
                assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < 1e-3


def test_bundled_models_by_name(tmp_path):
    """``--checkpoint fast`` and ``from_checkpoint("fast")`` pick the shipped fast model; a file of
    that name in the working folder would win, as any path does."""
    from emotion.checkpoint import BUNDLED_MODELS, model_source

    assert model_source(None) == model_source("default") == BUNDLED_MODELS["default"]
    assert model_source("fast") == BUNDLED_MODELS["fast"]
    if not BUNDLED_MODELS["fast"].is_dir():
        pytest.skip("no bundled fast model")
    p = FaceEmotionPredictor.from_checkpoint("fast", device="cpu")
    assert p.model.hparams.arch == "vgg_tiny" and p.checkpoint == "bundled:fast"
    assert len(p(SAMPLE_PHOTO).faces) == 6


def test_classify_many_batches_across_images_and_splits_back():
    """#32: the one "batch the faces of many images, split the probabilities back" helper that bulk, Ray and
    the service batcher share: each image's rows as alone; failed images stay None; empty ones (0, C)."""
    predictor = FaceEmotionPredictor.from_checkpoint("fast", device="cpu", bf16=False)
    faces = np.stack([np.asarray(Image.open(p).convert("L")) for p in
                      sorted((ROOT / "emotion/assets/fer2013_sample/test/happy").glob("*.jpg"))[:7]])
    sets = [faces[:3], None, faces[3:3], faces[3:]]
    out = predictor.classify_many(sets)
    assert out[1] is None and out[2].shape == (0, 7)
    for got, alone in ((out[0], predictor.classify(faces[:3])), (out[3], predictor.classify(faces[3:]))):
        np.testing.assert_allclose(got, alone, atol=1e-5)
    assert predictor.classify_many([None, None]) == [None, None]


def test_one_table_schema_for_csv_parquet_and_pandas():
    """#32: the face table declares each column's type once; CSV writes None as "", Arrow as null, pandas as NA."""
    from emotion.inference.outputs.table import face_rows, face_table

    names = ["happy", "sad"]
    faceless = {"path": "a.jpg", "frame": None, "time_s": None, "size": [10, 20], "faces": []}
    video = {"path": "v.mp4", "frame": 3, "time_s": 0.12, "size": [64, 48], "faces": [
        {"box": [1, 2, 3, 4], "score": 0.99, "label": "sad", "probabilities": {"happy": 0.25, "sad": 0.75},
         "track": 7, "detected": False, "smoothed_label": "sad", "smoothed": {"happy": 0.3, "sad": 0.7}}]}
    table, rows = face_table(names), face_rows([faceless, video], names)
    assert all(len(r) == len(table.columns) for r in rows) and rows[0][5:] == [None] * (len(table.columns) - 5)
    assert table.csv_rows(rows)[0][-1] == "" and table.csv_rows(rows)[1][table.names.index("track")] == 7
    arrow = table.arrow(rows)
    assert str(arrow.schema.field("face").type) == "int32" and str(arrow.schema.field("detected").type) == "bool"
    assert arrow.column("label").to_pylist() == [None, "sad"]
    df = table.pandas(rows)
    assert str(df["track"].dtype) == "Int64" and str(df["p_sad"].dtype) == "Float64"
    assert df["label"].isna().tolist() == [True, False] and df.loc[1, "smooth_happy"] == 0.3


def test_min_face_is_one_typed_rule_for_the_cli_and_the_service():
    """#32: "auto" or 20-4096 px, the same for --min-face and ?min_face=; a detector's own unless a call says."""
    from emotion.inference.detection import AUTO, MinFace

    assert MinFace.parse("auto") == MinFace.parse(None) == AUTO and MinFace.parse("40").px == 40.0
    for bad, words in (("tiny", "not an integer; give px or 'auto'"), ("3", "between 20 and 4096"),
                       ("5000", "between 20 and 4096")):
        with pytest.raises(ValueError, match=words):
            MinFace.parse(bad)
    with pytest.raises(SystemExit):
        from emotion.predict import main
        main([str(SAMPLE_PHOTO), "--min-face", "3"])


def test_a_photo_run_never_imports_torchvision():
    """#33: torchvision costs ~1.1 s of start-up (it imports torch._dynamo); a photo needs none of it."""
    code = ("import sys; from emotion.inference import FaceEmotionPredictor; "
            f"r = FaceEmotionPredictor.from_checkpoint(device='cpu')({str(SAMPLE_PHOTO)!r}); "
            "assert len(r.faces) == 6; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torchvision', 'lightning', 'pytorch_lightning', 'hydra', 'cv2', 'matplotlib', 'pyarrow', 'ray')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
