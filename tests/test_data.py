"""Both data layouts, the cache, the val-split rule and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emotion.data import CLASS_NAMES, FER2013DataModule, to_fer_face, to_model_input
from emotion.data.datamodule import stratified_split
from emotion.data.sources.cache import cache_path, load_or_build
from emotion.data.sources.fer2013 import locate_source, read_source
from emotion.errors import EmotionError
from tests.helpers import SAMPLE_ROOT, write_ck_style


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 48, 48), dtype=np.uint8)


def write_csv(path: Path, rows: list[tuple[int, np.ndarray, str | None]], header: str = "emotion,pixels,Usage") -> Path:
    lines = [header]
    for label, img, usage in rows:
        pix = " ".join(map(str, img.ravel()))
        lines.append(f'{label},"{pix}"' + (f",{usage}" if usage else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tree(root: Path, per_class: dict[str, int], prefix: str | None = "Training", split_dir: str = "train",
               seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for cls in CLASS_NAMES:
        d = root / split_dir / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class.get(cls, per_class.get("*", 0))):
            name = f"{prefix}_{i:05d}.jpg" if prefix else f"{i:05d}.jpg"
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(d / name)
    return root


# -- layouts -------------------------------------------------------------------------

def test_csv_usage_maps_to_splits(tmp_path):
    imgs = _faces(6)
    rows = [(0, imgs[0], "Training"), (1, imgs[1], "Training"), (2, imgs[2], "PublicTest"),
            (3, imgs[3], "PrivateTest"), (6, imgs[4], "PrivateTest"), (5, imgs[5], "Training")]
    src = locate_source(write_csv(tmp_path / "fer2013.csv", rows))
    raw = read_source(src)
    assert raw.images.shape == (6, 48, 48) and raw.images.dtype == np.uint8
    assert np.array_equal(raw.images[3], imgs[3])
    assert raw.labels.tolist() == [0, 1, 2, 3, 6, 5]
    assert raw.splits.tolist() == [0, 0, 1, 2, 2, 0]


def test_csv_found_in_folder_and_padded_headers(tmp_path):
    # torchvision's icml_face_data.csv pads its column names with spaces.
    (tmp_path / "icml_face_data.csv").write_text(
        "emotion, Usage, pixels\n4,Training," + " ".join(["7"] * 2304) + "\n")
    raw = read_source(locate_source(tmp_path))
    assert raw.labels.tolist() == [4] and int(raw.images[0, 0, 0]) == 7


def test_folder_prefixes_give_standard_splits():
    dm = FER2013DataModule(root=str(SAMPLE_ROOT), cache_dir=None)
    dm.setup()
    sizes = {s: len(dm.arrays[s][1]) for s in ("train", "val", "test")}
    assert sizes == {"train": 280, "val": 70, "test": 70}
    assert dm.class_counts("val").tolist() == [10] * 7


def test_tree_without_prefixes_gets_seeded_stratified_val(tmp_path):
    write_tree(tmp_path, {"*": 20}, prefix=None)
    write_tree(tmp_path, {"*": 3}, prefix=None, split_dir="test")
    a = FER2013DataModule(root=str(tmp_path), val_fraction=0.25, seed=1)
    a.setup()
    assert a.class_counts("val").tolist() == [5] * 7  # 25 % of each class
    assert a.class_counts("train").tolist() == [15] * 7
    assert a.class_counts("test").tolist() == [3] * 7
    b = FER2013DataModule(root=str(tmp_path), val_fraction=0.25, seed=1)
    b.setup()
    assert np.array_equal(a.arrays["val"][0], b.arrays["val"][0])  # same seed, same split
    c = FER2013DataModule(root=str(tmp_path), val_fraction=0.25, seed=2)
    c.setup()
    assert not np.array_equal(a.arrays["val"][0], c.arrays["val"][0])


def test_stratified_split_keeps_rare_classes():
    labels = np.array([0] * 100 + [1] * 3)
    mask = stratified_split(labels, 0.1, seed=0)
    assert mask[:100].sum() == 10 and mask[100:].sum() == 1


# -- cache -----------------------------------------------------------------------------

def test_cache_hit_and_invalidation(tmp_path):
    root = write_tree(tmp_path / "fer", {"*": 4})
    cache = tmp_path / "cache"
    src = locate_source(root)
    first = load_or_build(src, cache)
    path = cache_path(src, cache)
    assert path.is_file() and len(first.labels) == 28
    stamp = path.stat().st_mtime_ns
    again = load_or_build(src, cache)
    assert path.stat().st_mtime_ns == stamp  # a hit: not rewritten
    assert np.array_equal(again.images, first.images)
    # Adding an image changes the source: the single cache file is rebuilt.
    shutil.copy(root / "train/happy/Training_00000.jpg", root / "train/happy/Training_99999.jpg")
    rebuilt = load_or_build(src, cache)
    assert len(rebuilt.labels) == 29 and path.stat().st_mtime_ns != stamp
    assert [p.name for p in cache.iterdir()] == [path.name]


def test_corrupt_cache_is_rebuilt(tmp_path):
    root = write_tree(tmp_path / "fer", {"*": 2})
    src = locate_source(root)
    load_or_build(src, tmp_path)
    cache_path(src, tmp_path).write_bytes(b"not an npz")
    assert len(load_or_build(src, tmp_path).labels) == 14


# -- bad input ----------------------------------------------------------------------------

def test_missing_root_says_where_data_comes_from(tmp_path):
    with pytest.raises(EmotionError, match=r"not found at .*kaggle.*data\.root"):
        FER2013DataModule(root=str(tmp_path / "nowhere")).setup()


def test_empty_class_folder_is_named(tmp_path):
    root = write_tree(tmp_path, {"*": 2})
    shutil.rmtree(root / "train/fear")
    (root / "train/fear").mkdir()
    with pytest.raises(EmotionError, match=r"train/fear' holds no images"):
        read_source(locate_source(root))


def test_unknown_class_folder_is_named_with_the_fix(tmp_path):
    root = write_tree(tmp_path, {"*": 1})
    (root / "train/bored").mkdir()
    Image.new("L", (48, 48)).save(root / "train/bored/Training_1.jpg")
    with pytest.raises(EmotionError, match=r"unknown class folder .*bored.*data\.label_map=\{bored: null\}"):
        read_source(locate_source(root))


# -- another dataset's class folders as a test set --------------------------------------------------

def test_class_folders_are_a_test_set_with_aliases_and_skipped_classes(tmp_path):
    root = write_ck_style(tmp_path / "ck")
    raw = read_source(locate_source(root))
    assert raw.skipped_classes == {"contempt": 2}
    assert raw.images.shape == (7, 48, 48) and set(raw.splits) == {2}  # all test
    counts = np.bincount(raw.labels, minlength=7)
    assert counts.tolist() == [2, 0, 0, 1, 3, 1, 0]  # angry, happy, sad, surprise


def test_label_map_keeps_or_drops_classes(tmp_path):
    root = write_ck_style(tmp_path / "ck")
    raw = read_source(locate_source(root), {"Contempt": "neutral", "sadness": None})
    assert raw.skipped_classes == {"sadness": 3}
    assert np.bincount(raw.labels, minlength=7).tolist() == [2, 0, 0, 1, 0, 1, 2]
    dm = FER2013DataModule(root=str(root), cache_dir=str(tmp_path / "cache"), num_workers=0,
                           label_map={"contempt": 6})
    assert dm.class_counts("test").tolist() == [2, 0, 0, 1, 3, 1, 2] and dm.skipped_classes == {}
    # The map is part of the cache key: another map is not served the first one's labels.
    dm2 = FER2013DataModule(root=str(root), cache_dir=str(tmp_path / "cache"), num_workers=0)
    assert dm2.class_counts("test").tolist() == [2, 0, 0, 1, 3, 1, 0] and dm2.skipped_classes == {"contempt": 2}
    again = FER2013DataModule(root=str(root), cache_dir=str(tmp_path / "cache"), num_workers=0)
    assert again.class_counts("test").tolist() == [2, 0, 0, 1, 3, 1, 0]  # from the cache, skips and all
    assert again.skipped_classes == {"contempt": 2}
    with pytest.raises(EmotionError, match="no val faces.*split=test"):
        dm2.dataset("val")
    with pytest.raises(EmotionError, match="no train faces"):
        dm2.dataset("train")


def test_bad_label_map_is_named():
    from emotion.data.classes import check_label_map

    assert check_label_map({"contempt": "neutral", "x": None, "y": 3}) is None
    assert "not a FER2013 class" in check_label_map({"contempt": "smug"})
    assert "mapping" in check_label_map(["contempt"])


def test_corrupt_jpeg_is_skipped_with_a_warning(tmp_path):
    root = write_tree(tmp_path, {"*": 2})
    good = (root / "train/sad/Training_00000.jpg").read_bytes()
    (root / "train/sad/Training_00000.jpg").write_bytes(good[: len(good) // 3])  # truncated
    (root / "train/angry/Training_00001.jpg").write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="skipped 2 unreadable image"):
        raw = read_source(locate_source(root))
    assert raw.skipped == 2 and len(raw.labels) == 12


def test_csv_wrong_pixel_count_names_file_and_line(tmp_path):
    path = write_csv(tmp_path / "fer2013.csv", [(0, _faces(1)[0], "Training")])
    with open(path, "a") as f:
        f.write('3,"1 2 3",Training\n')
    with pytest.raises(EmotionError, match=r"fer2013\.csv', line 3: 'pixels' has 3 values, expected 2304"):
        read_source(locate_source(path))


def test_csv_without_labels_is_explained(tmp_path):
    (tmp_path / "test.csv").write_text("pixels\n" + " ".join(["0"] * 2304) + "\n")
    with pytest.raises(EmotionError, match="no 'emotion' column"):
        read_source(locate_source(tmp_path / "test.csv"))


def test_bad_balance_mode():
    with pytest.raises(EmotionError, match="data.balance"):
        FER2013DataModule(root=str(SAMPLE_ROOT), balance="oversample")


# -- preprocessing and loaders --------------------------------------------------------------

@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16"])
def test_to_fer_face_any_mode(mode):
    rgb = Image.new("RGB", (97, 131), (200, 100, 50))
    # An adaptive palette holds the colour itself (the default web palette would dither it).
    img = rgb.convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P" else rgb.convert(mode)
    face = to_fer_face(img)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    # The same grey in every mode: ITU-R 601 luma of (200, 100, 50) is 124.2.
    assert (face == 124).all(), (mode, np.unique(face))


def test_to_fer_face_reads_transparency_as_white():
    clear = Image.new("RGBA", (60, 60), (10, 20, 30, 0))
    assert (to_fer_face(clear) == 255).all()
    assert (to_fer_face(clear.convert("LA")) == 255).all()


def test_model_input_shape_and_upsampling():
    faces = _faces(3)
    x = to_model_input(faces, 48)
    assert x.shape == (3, 1, 48, 48) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.5
    assert to_model_input(faces[0], 64).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("balance", ["none", "sampler", "loss"])
def test_loaders_and_balancing(balance):
    import albumentations as A

    dm = FER2013DataModule(root=str(SAMPLE_ROOT), cache_dir=None, batch_size=16, num_workers=0,
                           augment=A.HorizontalFlip(p=0.5), balance=balance)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 48, 48) and y.dtype == torch.int64
    weights = dm.class_weights
    if balance == "loss":
        assert len(weights) == 7 and abs(np.mean(weights) - 1) < 1e-6
    else:
        assert weights is None
