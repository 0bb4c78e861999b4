"""Fuzzing the readers and the predict CLI (issue #7): whatever the bytes, a valid result or one clear
:class:`EmotionError` naming the file; never another exception, never a hang, and a decompression bomb
is refused from its header, never decoded."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from emotion.data.classes import CLASS_NAMES, SPLITS, USAGE_TO_SPLIT
from emotion.data.sources.fer2013 import RawFER, locate_source, read_csv, read_source
from emotion.errors import EmotionError
from emotion.inference.images import MAX_PIXELS, MAX_SIDE, load_image
from emotion.predict import main
from tests.helpers import ROOT, SAMPLE_ROOT, needs_bundled, png_header

FACES = sorted(SAMPLE_ROOT.rglob("*.jpg"))
# Broken files make PIL warn (corrupt EXIF, odd TIFF tags) and odd arrays make numpy warn (NaN casts):
# noise here, the property under test is what is raised.
pytestmark = [pytest.mark.usefixtures("one_cpu_thread"), pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def fuzz(examples: int, *, fixtures: bool = False):
    """Hypothesis settings: few examples (the suite runs on a busy 2-core box), no deadline (timing
    varies with load; pytest-timeout catches hangs), no example database written into the repo."""
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    if fixtures:  # capsys, shared by all examples: each one empties it first
        checks.append(HealthCheck.function_scoped_fixture)
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=checks)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")




def fresh_dir(scratch: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=scratch))


# -- inputs ---------------------------------------------------------------------------------------
MAGICS = [b"", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xc0", b"\x89PNG\r\n\x1a\n", b"GIF87a",
          b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"RIFF\x00\x10\x00\x00WEBPVP8L",
          b"P5\n", b"P6\n", b"\x00\x00\x01\x00", b"DDS |\x00\x00\x00", b"8BPS", b"qoif",
          b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"Image type: ", b"icns", b"\x59\xa6\x6a\x95", b"\x0a\x05\x01\x08"]
SEED_KINDS = ("jpeg", "jpeg_exif", "jpeg_progressive", "png", "png_rgba", "png_palette", "gif", "bmp", "tiff",
              "tiff_lzw", "webp", "ppm")


@lru_cache(maxsize=None)
def seed_files() -> dict[str, bytes]:
    """Valid files of every common format, made from a real FER2013 face (96×96, coloured)."""
    face = Image.open(FACES[0]).convert("L").resize((96, 96), Image.Resampling.BICUBIC)
    rgb = Image.merge("RGB", (face, face.point(lambda v: 255 - v), face))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exif_transpose runs on the fuzzed EXIF block
    files = {"jpeg": FACES[0].read_bytes()}
    for kind, fmt, img, kw in [
        ("jpeg_exif", "JPEG", rgb, {"exif": exif}), ("jpeg_progressive", "JPEG", rgb, {"progressive": True}),
        ("png", "PNG", rgb, {}), ("png_rgba", "PNG", rgb.convert("RGBA"), {}),
        ("png_palette", "PNG", rgb.convert("P", palette=Image.Palette.ADAPTIVE), {"transparency": 0}),
        ("gif", "GIF", rgb, {}), ("bmp", "BMP", rgb, {}), ("tiff", "TIFF", rgb, {}),
        ("tiff_lzw", "TIFF", rgb, {"compression": "tiff_lzw"}), ("webp", "WEBP", rgb, {}), ("ppm", "PPM", rgb, {}),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        files[kind] = buf.getvalue()
    return files


def gif_header(w: int, h: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x02\x02\x44\x01\x00\x3b")


def bmp_header(w: int, h: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + b"\0" * 16


def tiff_header(w: int, h: int) -> bytes:
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0" * 16


def ppm_header(w: int, h: int) -> bytes:
    return f"P5\n{w} {h}\n255\n".encode() + b"\0" * 16


def jpeg_header(w: int, h: int) -> bytes:
    return b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00\xff\xd9"


#: Header-only files claiming any size, and the largest side each format can state (PIL reads
#: PPM numbers of up to 10 digits).
HEADERS = {"png": (png_header, 2**31 - 1), "gif": (gif_header, 2**16 - 1), "bmp": (bmp_header, 2**31 - 1),
           "tiff": (tiff_header, 2**32 - 1), "ppm": (ppm_header, 10**10 - 1), "jpeg": (jpeg_header, 2**16 - 1)}
# Sides: tiny (zero included), bomb-sized (any two make > MAX_PIXELS) or absurd.
DIMS = st.one_of(st.integers(0, 64), st.integers(11_000, 65_535), st.integers(65_536, 2**40))


@st.composite
def header_claims(draw) -> tuple[str, int, int, bytes]:
    fmt = draw(st.sampled_from(sorted(HEADERS)))
    build, largest = HEADERS[fmt]
    w, h = draw(DIMS), draw(DIMS)
    assume(max(w, h) <= largest)
    return fmt, w, h, build(w, h)


@st.composite
def broken_files(draw) -> bytes:
    """Random bytes behind a real magic number, a real file cut short or with bytes changed, or a
    header claiming any size."""
    how = draw(st.sampled_from(["random", "truncated", "flipped", "header"]))
    if how == "random":
        return draw(st.sampled_from(MAGICS)) + draw(st.binary(max_size=1024))
    if how == "header":
        return draw(header_claims())[3]
    blob = bytearray(seed_files()[draw(st.sampled_from(SEED_KINDS))])
    if how == "truncated":
        return bytes(blob[: draw(st.integers(0, len(blob) - 1))])
    for i, b in draw(st.lists(st.tuples(st.integers(0, min(len(blob), 200) - 1), st.integers(0, 255)),
                              min_size=1, max_size=8)):
        blob[i] = b  # mostly in the header, where sizes and offsets live
    return bytes(blob)


# -- the property ---------------------------------------------------------------------------------
def load_or_error(source, name: str | None = None) -> Image.Image | EmotionError:
    """``load_image(source)``: a valid RGB image, or an EmotionError on one line that names the file.
    Any other exception propagates and fails the test."""
    try:
        img, _ = load_image(source)
    except EmotionError as e:
        msg = str(e)
        assert msg and "\n" not in msg, msg
        if name is not None:
            assert name in msg, msg
        return e
    assert isinstance(img, Image.Image) and img.mode == "RGB" and min(img.size) >= 1
    assert np.asarray(img).shape == (img.height, img.width, 3)
    return img


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# -- image files ----------------------------------------------------------------------------------
@pytest.mark.timeout(120)
@fuzz(1000)
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=4096))
def test_random_bytes(scratch, magic, body):
    path = write(scratch, "random.img", magic + body)
    load_or_error(path, str(path))


@pytest.mark.timeout(120)
@fuzz(1000)
@given(kind=st.sampled_from(SEED_KINDS), data=st.data())
def test_truncated_and_corrupted_real_files(scratch, kind, data):
    blob = bytearray(seed_files()[kind])
    cut = data.draw(st.integers(0, len(blob)), label="cut")  # len(blob): not cut
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), max_size=6),
                      label="flips anywhere")
    flips += data.draw(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 255)), max_size=4),
                       label="flips in the header")
    for i, b in flips:
        blob[i] = b
    path = write(scratch, f"broken.{kind}", bytes(blob[:cut]))
    result = load_or_error(path, str(path))
    if cut == len(blob) and not flips:  # untouched: it must load
        assert isinstance(result, Image.Image) and result.size == ((48, 48) if kind == "jpeg" else (96, 96))


@pytest.mark.timeout(120)
@fuzz(500)
@given(claim=header_claims())
def test_zero_and_huge_claimed_dimensions(scratch, claim):
    fmt, w, h, blob = claim
    path = write(scratch, f"claim.{fmt}", blob)
    result = load_or_error(path, str(path))
    bomb = min(w, h) > 0 and (w * h > MAX_PIXELS or max(w, h) > MAX_SIDE)  # 0 × N: just not an image
    if w == 0 or h == 0 or bomb:
        assert isinstance(result, EmotionError)
    if bomb:  # refused from the header: the claim is never allocated, let alone decoded
        assert "decompression bomb" in str(result)


def _saved(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 120, 150)).save(buf, fmt)
    return buf.getvalue()


def tiff_with_text_offsets() -> bytes:
    """A TIFF whose StripOffsets tag has type ASCII: PIL seeks to a string (TypeError)."""
    blob = bytearray(_saved("TIFF"))
    ifd = struct.unpack_from("<I", blob, 4)[0]
    for k in range(struct.unpack_from("<H", blob, ifd)[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack_from("<H", blob, entry)[0] == 273:
            struct.pack_into("<H", blob, entry + 2, 2)
    return bytes(blob)


def dds_with_unknown_flags() -> bytes:
    """A DDS whose pixel-format flags PIL does not know (NotImplementedError)."""
    blob = bytearray(_saved("DDS"))
    blob[80] = 146
    return bytes(blob)


def im_with_float_size() -> bytes:
    """An IM file declaring its size as "3.*32" (TypeError when the image is allocated)."""
    return _saved("IM").replace(b"32*32", b"3.*32")


#: Files the fuzzer found that made PIL raise outside its usual OSError/ValueError.
DECODER_CRASHES = {"text_offsets.tif": tiff_with_text_offsets, "unknown_flags.dds": dds_with_unknown_flags,
                   "float_size.im": im_with_float_size}


@pytest.mark.parametrize("name", sorted(DECODER_CRASHES))
def test_decoder_crashes_found_by_fuzzing(tmp_path, name):
    path = write(tmp_path, name, DECODER_CRASHES[name]())
    result = load_or_error(path, str(path))
    assert isinstance(result, EmotionError) and "cannot be decoded" in str(result)


def test_folder_reader_skips_decoder_crashes(tmp_path):
    for i, cls in enumerate(CLASS_NAMES):
        (tmp_path / "train" / cls).mkdir(parents=True)
        (tmp_path / "train" / cls / f"Training_{i}.jpg").write_bytes(FACES[i * 60].read_bytes())
    for name, make in DECODER_CRASHES.items():  # PIL goes by content: the suffix only gets them read
        write(tmp_path / "train" / "happy", f"Training_{name.replace('.', '_')}.png", make())
    write(tmp_path / "train" / "sad", "Training_thin.png", png_header(1, 100_000_000))
    with pytest.warns(UserWarning, match="skipped 4 unreadable image"):
        raw = read_source(locate_source(tmp_path))
    assert raw.skipped == 4 and len(raw.labels) == 7


ODD_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
             "I", "I;16", "I;16B", "I;16L", "F"]


def random_image(mode: str, w: int, h: int, seed: int) -> Image.Image:
    """Random raw bytes in ``mode`` (floats: NaN and inf included; palettes: transparency set)."""
    rng = np.random.default_rng(seed)
    n = len(Image.new(mode, (w, h)).tobytes())
    img = Image.frombytes(mode, (w, h), rng.bytes(n))
    if mode == "P":
        img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        img.info["transparency"] = int(img.getpixel((0, 0)))  # at least one transparent pixel
    return img


@pytest.mark.timeout(120)
@fuzz(300)
@given(mode=st.sampled_from(ODD_MODES), fmt=st.sampled_from(["PNG", "TIFF"]),
       w=st.integers(1, 40), h=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_odd_modes_in_memory_and_saved(scratch, mode, fmt, w, h, seed):
    img = random_image(mode, w, h, seed)
    rgb = load_or_error(img)
    assert isinstance(rgb, Image.Image) and rgb.size == (w, h)  # every mode PIL has converts
    if mode == "P":  # the transparent index is composited over white, as viewers show it
        assert rgb.getpixel((0, 0)) == (255, 255, 255)
    path = scratch / f"mode.{fmt.lower()}"
    try:
        kw = {"transparency": img.info["transparency"]} if mode == "P" else {}
        img.save(path, fmt, **kw)
        with Image.open(path) as check:
            check.load()
    except (OSError, ValueError, KeyError, TypeError):
        return  # PIL cannot write (or read back) this mode in this format: nothing to test
    saved = load_or_error(path, str(path))
    assert isinstance(saved, Image.Image) and saved.size == (w, h)  # a valid file always loads


@pytest.mark.timeout(60)
@fuzz(40)
@given(orientation=st.one_of(st.integers(0, 9), st.integers(0, 65535)))
def test_any_exif_orientation(scratch, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = scratch / "oriented.jpg"
    Image.new("RGB", (30, 20), (200, 30, 30)).save(path, exif=exif)
    img = load_or_error(path, str(path))
    assert isinstance(img, Image.Image)
    assert img.size == ((20, 30) if orientation in (5, 6, 7, 8) else (30, 20))


# -- numpy arrays ---------------------------------------------------------------------------------
NUMERIC = [np.bool_, np.uint8, np.int8, np.uint16, np.int32, np.int64, np.uint64, np.float16, np.float32,
           np.float64]
OTHER = [np.complex64, np.dtype("datetime64[s]"), np.dtype("U3")]
SHAPES = st.one_of(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
                   st.tuples(st.integers(1, 24), st.integers(1, 24), st.integers(1, 5)),
                   st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([0, 3])))


@pytest.mark.timeout(120)
@fuzz(500)
@given(arr=hnp.arrays(st.sampled_from(NUMERIC + OTHER), SHAPES))
def test_arrays(arr):
    result = load_or_error(arr)
    numeric = arr.dtype in [np.dtype(d) for d in NUMERIC]
    shaped = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))
    if numeric and shaped and arr.size:
        assert isinstance(result, Image.Image) and result.size == (arr.shape[1], arr.shape[0])
        if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
            np.testing.assert_array_equal(np.asarray(result), arr)  # plain RGB passes untouched
    else:
        assert isinstance(result, EmotionError)


def test_arrays_and_images_without_pixels():
    for source in (Image.new("RGB", (0, 0)), Image.new("L", (0, 7)), np.zeros((0, 5, 3), np.uint8),
                   np.zeros((), np.uint8), np.array([[object()]])):
        assert isinstance(load_or_error(source), EmotionError)


# -- the CSV reader -------------------------------------------------------------------------------
N_PIX = 48 * 48
CSV_HEADERS = [("emotion", "pixels", "Usage"), ("emotion", "pixels"), ("emotion", " Usage", " pixels"),
               ("Usage", "pixels", "emotion", "extra"), ("pixels", "EMOTION"),
               ("pixels",), ("emotion", "Usage"), ("label", "image")]  # the last three lack a column
ROW_KINDS = ["good", "good", "good", "blank", "few_pixels", "many_pixels", "word", "label_range",
             "pixel_range", "missing_field", "extra_field", "bad_usage"]


@st.composite
def fer_csvs(draw) -> tuple[str, list[tuple[np.ndarray, int, int]], int | None, bool]:
    """A CSV from good and bad rows, and what reading it must give: the good rows' (image, label,
    split), the line of the first bad row (the whole file is refused there), whether the header works."""
    header = draw(st.sampled_from(CSV_HEADERS))
    names = [h.strip().lower() for h in header]
    header_ok = "pixels" in names and "emotion" in names
    kinds = draw(st.lists(st.sampled_from(ROW_KINDS), max_size=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    quote, eol = draw(st.booleans()), draw(st.sampled_from(["\n", "\r\n"]))
    lines, good, first_bad = [",".join(header)], [], None
    for line, kind in enumerate(kinds, start=2):
        if kind == "blank":
            lines.append("")
            continue
        pixels = rng.integers(0, 256, N_PIX)
        tokens = [str(v) for v in pixels]
        fields = {"emotion": str(rng.integers(0, 7)), "usage": str(rng.choice(list(USAGE_TO_SPLIT))), "extra": "x"}
        bad = kind not in ("good", "extra_field")
        if kind == "few_pixels":
            tokens = tokens[: rng.integers(0, N_PIX)]
        elif kind == "many_pixels":
            tokens += ["0"] * int(rng.integers(1, 30))
        elif kind == "word":
            # "" leaves two spaces, so a pixel is missing; "\u00bd" is numeric to Unicode, not to int().
            tokens[rng.integers(0, N_PIX)] = str(rng.choice(["x", "1.5", "nan", "-", "0x1f", "1e2", "", "\u00bd"]))
        elif kind == "label_range":
            fields["emotion"] = str(rng.choice(["-1", "7", "255", "99999999999999999999999", "3.0", ""]))
        elif kind == "pixel_range":
            tokens[rng.integers(0, N_PIX)] = str(rng.choice(["-1", "256", "70000", "99999999999999999999999"]))
        elif kind == "bad_usage":
            fields["usage"] = str(rng.choice(["", "Validation", "training", "Train ing"]))
            bad = "usage" in names
        fields["pixels"] = f'"{" ".join(tokens)}"' if quote else " ".join(tokens)
        row = [fields[n] for n in names] if header_ok else ["0"] * len(names)
        if kind == "missing_field":
            bad = names[-1] in ("pixels", "emotion", "usage")  # an unused last column may go
            row = row[:-1]
        elif kind == "extra_field":
            row.append("surplus")
        lines.append(",".join(row))
        if bad and first_bad is None:
            first_bad = line
        elif not bad:
            split = USAGE_TO_SPLIT[fields["usage"]] if "usage" in names else "train"
            good.append((pixels.reshape(48, 48).astype(np.uint8), int(fields["emotion"]), SPLITS.index(split)))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return bom + eol.join(lines) + eol, good, first_bad, header_ok


def assert_consistent(raw: RawFER) -> None:
    n = len(raw.labels)
    assert n >= 1 and raw.images.shape == (n, 48, 48) and raw.images.dtype == np.uint8
    assert raw.labels.dtype == np.uint8 and raw.labels.max() < len(CLASS_NAMES)
    assert raw.splits.shape == (n,) and raw.splits.max() < len(SPLITS)


def read_via(folder: Path, text: str | bytes, via_folder: bool) -> RawFER:
    path = folder / "fer2013.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return read_source(locate_source(folder if via_folder else path))


@pytest.mark.timeout(120)
@fuzz(300)
@given(case=fer_csvs(), via_folder=st.booleans())
def test_csv_rows_good_and_bad(scratch, case, via_folder):
    text, good, first_bad, header_ok = case
    folder = fresh_dir(scratch)
    if not header_ok or first_bad is not None or not good:
        with pytest.raises(EmotionError) as err:
            read_via(folder, text, via_folder)
        assert "fer2013.csv" in str(err.value)
        if header_ok and first_bad is not None:
            assert f"line {first_bad}:" in str(err.value)  # the first bad row, by its line
        return
    raw = read_via(folder, text, via_folder)
    assert_consistent(raw)
    assert raw.skipped == 0 and len(raw.labels) == len(good)
    for i, (img, label, split) in enumerate(good):
        assert np.array_equal(raw.images[i], img) and raw.labels[i] == label and raw.splits[i] == split


CSV_ALPHABET = st.sampled_from(list('0123456789 ,"\r\n-xU\x00\ufeff'))


@pytest.mark.timeout(120)
@fuzz(500)
@given(content=st.one_of(
    st.binary(max_size=3000), st.text(max_size=3000),
    st.tuples(st.sampled_from(["emotion,pixels,Usage\n", "\ufeffemotion,pixels\r\n", "pixels,emotion\n"]),
              st.text(CSV_ALPHABET, max_size=3000)).map(lambda t: t[0] + t[1])))
def test_csv_random_content(scratch, content):
    try:
        raw = read_via(fresh_dir(scratch), content, via_folder=True)
    except EmotionError as e:
        assert "fer2013.csv" in str(e)
        return
    assert_consistent(raw)


GOOD_ROW = "3," + " ".join(["7"] * N_PIX)


@pytest.mark.parametrize("content, outcome", [
    ("\ufeffemotion,pixels,Usage\n" + GOOD_ROW + ",PublicTest\n", 1),  # Excel's byte-order mark
    ("emotion,pixels,Usage\r\n" + GOOD_ROW + ",Training\r\n\r\n", 1),  # CRLF, trailing blank line
    ("emotion,pixels,Usage\r" + GOOD_ROW + ",Training\r", 1),  # old Mac line ends
    ("emotion,pixels,Usage\n" + GOOD_ROW + "\n", "line 2: 2 field(s), expected 3"),  # Usage missing
    ("emotion,pixels\n0," + " ".join(["99999999999999999999"] * N_PIX) + "\n", "line 2: malformed row"),
    ("emotion,pixels\n0," + "1 " * 100_000 + "\n", "line 2: not a FER2013 CSV"),  # a 200 KB field
    ("emotion,pixels\n0,\0" + " ".join(["7"] * N_PIX) + "\n", "line 2: malformed row"),
    (b"emotion,pixels\n0,\xe9\xff\xfe\n", "not a text CSV file"),
    (bytes(range(256)) * 8, "not a text CSV file"),
    ("", "no 'pixels' column"),
    ("emotion,pixels,Usage\n", "header but no rows"),
    ("emotion,pixels,Usage\n\n\n", "header but no rows"),
    ("x" * 100_000 + ",y\n", "no 'pixels' column"),
])
def test_csv_edge_cases(tmp_path, content, outcome):
    if isinstance(outcome, int):
        raw = read_via(tmp_path, content, via_folder=True)
        assert_consistent(raw)
        assert len(raw.labels) == outcome and raw.labels[0] == 3 and int(raw.images[0, 5, 5]) == 7
    else:
        with pytest.raises(EmotionError, match="fer2013.csv") as err:
            read_via(tmp_path, content, via_folder=True)
        assert outcome in str(err.value) and len(str(err.value)) < 500


def test_read_csv_directly_names_the_file(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("emotion,pixels\n9," + " ".join(["0"] * N_PIX) + "\n")
    with pytest.raises(EmotionError, match=r"mine\.csv', line 2: emotion must be 0-6"):
        read_csv(path)


# -- the image-folder reader ----------------------------------------------------------------------
def _pil_reads(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            if max(im.size) > MAX_SIDE:  # refused from the header (and too costly to try here)
                return False
            im.load()
        return True
    except Exception:  # noqa: BLE001 - the oracle: whatever PIL cannot read must be skipped
        return False


@pytest.mark.timeout(120)
@fuzz(60)
@given(bad=st.lists(st.tuples(broken_files(), st.sampled_from([".jpg", ".png", ".bmp", ".tif", ".webp"])),
                    min_size=1, max_size=4))
def test_folder_reader_skips_each_bad_file(scratch, bad):
    root = fresh_dir(scratch)
    for i, cls in enumerate(CLASS_NAMES):  # one real face per class
        (root / "train" / cls).mkdir(parents=True)
        (root / "train" / cls / f"Training_good{i}.jpg").write_bytes(FACES[i * 60].read_bytes())
    paths = [write(root / "train" / CLASS_NAMES[i % 7], f"Training_bad{i}{suffix}", blob)
             for i, (blob, suffix) in enumerate(bad)]
    paths.append(write(root / "train" / "sad", "Training_bomb.png", png_header(100_000, 100_000)))
    unreadable = sum(not _pil_reads(p) for p in paths)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = read_source(locate_source(root))
    assert_consistent(raw)
    assert raw.skipped == unreadable and len(raw.labels) == 7 + len(paths) - unreadable
    assert any(f"skipped {unreadable} unreadable image" in str(w.message) for w in caught)


# -- the predict CLI ------------------------------------------------------------------------------
CLI_SUFFIXES = [".jpg", ".png", ".gif", ".tif", ".bmp", ".webp", ".ppm", ".mp4", ".avi"]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


@needs_bundled
@pytest.mark.timeout(300)
@fuzz(40, fixtures=True)
@given(bad=st.lists(st.tuples(broken_files(), st.sampled_from(CLI_SUFFIXES)), min_size=1, max_size=3))
def test_predict_cli_reports_each_bad_file(scratch, capsys, bad):
    capsys.readouterr()  # one capsys for all examples: start empty
    folder = fresh_dir(scratch)
    photos, out = folder / "photos", folder / "out"
    photos.mkdir()
    good = photos / "good.jpg"
    Image.open(FACES[0]).resize((160, 160), Image.Resampling.BICUBIC).save(good)
    files = [write(photos, f"bad{i}{suffix}", blob) for i, (blob, suffix) in enumerate(bad)]

    code = main([str(photos), "--out", str(out), "--no-annotate", "-q", "--device", "cpu"])

    std = capsys.readouterr()
    assert "Traceback" not in std.err and "please report" not in std.err
    data = json.loads((out / "predictions.json").read_text())
    results = {r["path"] for r in data["results"]}
    errors = {e["path"]: e["error"] for e in data["errors"]}
    assert code == (1 if errors else 0)
    assert str(good) in results
    for f in files:
        assert (str(f) in results) != (str(f) in errors)  # each file once: a result or an error
        if f.suffix not in (".mp4", ".avi") and isinstance(load_or_error(f), EmotionError):
            assert str(f) in errors  # the reader's verdict is the CLI's
        if str(f) in errors:  # named in its message, and on exactly one line of stderr
            assert f.name in errors[str(f)] and sum(f.name in line for line in std.err.splitlines()) == 1
    assert no_temp_files(out)


@pytest.fixture(scope="module")
def predictor():
    from emotion.inference import FaceEmotionPredictor

    return FaceEmotionPredictor.from_checkpoint(device="cpu")


@needs_bundled
@pytest.mark.timeout(120)
@fuzz(60)
@given(w=st.one_of(st.integers(1, 40), st.integers(1000, 5000)), h=st.integers(1, 40),
       transpose=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_predictor_on_tiny_and_thin_images(predictor, w, h, transpose, seed):
    """Any valid image, however small or thin, gives a result (MTCNN's pyramid used to be empty
    for a shorter side of 12-19 px, and it failed on torch.cat of nothing)."""
    w, h = (h, w) if transpose else (w, h)
    img = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    result = predictor(img)
    assert result.size == (w, h) and all(0 <= f.box[0] <= f.box[2] <= w for f in result.faces)
    assert predictor.annotate(img, result).mode == "RGB"


@needs_bundled
def test_predict_cli_keeps_going_after_an_unexpected_error(tmp_path, capsys, monkeypatch):
    """A bug met on one file (here: a planted RuntimeError) is reported and costs no other result."""
    from emotion.inference.predictor import FaceEmotionPredictor

    for name, side in (("a.jpg", 161), ("b.jpg", 160)):
        Image.open(FACES[0]).resize((side, side)).save(tmp_path / name)
    real = FaceEmotionPredictor.find_faces

    def flaky(self, image, **kw):  # the step every path takes, in the worker processes too (forked)
        if image.size == (161, 161):
            raise RuntimeError("planted\nsecond line")
        return real(self, image, **kw)

    monkeypatch.setattr(FaceEmotionPredictor, "find_faces", flaky)
    code = main([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "--out", str(tmp_path / "out"),
                 "--no-annotate", "-q", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    data = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [Path(r["path"]).name for r in data["results"]] == ["b.jpg"]
    [error] = data["errors"]
    assert error["path"].endswith("a.jpg") and "RuntimeError: planted" in error["error"]
    assert "please report" in error["error"] and "\n" not in error["error"]


# -- memory: bombs are refused from the header, not decoded ----------------------------------------
_PEAK_RSS = """\
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                  "peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def cli_peak_rss(*args: str, cwd: Path) -> dict:
    """Run the predict CLI in a fresh process; its peak resident memory (bytes), exit code and output.

    A wrapper process runs it, so RUSAGE_CHILDREN holds that one child only."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "emotion.predict", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def zlib_bomb(w: int, h: int) -> bytes:
    """A real PNG bomb: w×h 8-bit grey of zeros (w·h bytes decoded) in a few hundred KB."""
    z, row, parts = zlib.compressobj(9), b"\0" * (w + 1), []
    for _ in range(h):
        parts.append(z.compress(row))
    parts.append(z.flush())
    return png_header(w, h, b"".join(parts), color=0)


@needs_bundled
@pytest.mark.timeout(300)
def test_decompression_bombs_refused_with_bounded_memory(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    good = photos / "good.jpg"
    Image.open(FACES[0]).resize((160, 160), Image.Resampling.BICUBIC).save(good)
    baseline = cli_peak_rss(str(good), "--out", str(tmp_path / "base"), "--no-annotate", "-q", "--device", "cpu",
                            cwd=tmp_path)
    assert baseline["rc"] == 0, baseline["stderr"]

    bombs = {
        "bomb.png": png_header(100_000, 100_000),  # 10 GP: 30 GB as RGB; PIL's own guard
        "huge.png": png_header(12_000, 11_000),  # 132 MP: over our limit, under PIL's
        "zbomb.png": zlib_bomb(13_000, 13_000),  # 169 MP of real, decodable zeros
        "thin.png": png_header(1, 100_000_000),  # 100 MP, but PIL's row pointers alone take 800 MB
        "bomb.gif": gif_header(60_000, 60_000), "bomb.bmp": bmp_header(60_000, 60_000),
        "bomb.tif": tiff_header(60_000, 60_000), "bomb.jpg": jpeg_header(60_000, 60_000),
        "bomb.ppm": ppm_header(60_000, 60_000),
    }
    assert len(bombs["zbomb.png"]) < 1_000_000
    for name, blob in bombs.items():
        write(photos, name, blob)
    run = cli_peak_rss(str(photos), "--out", str(tmp_path / "out"), "--no-annotate", "-q", "--device", "cpu",
                       cwd=tmp_path)

    assert run["rc"] == 1 and "Traceback" not in run["stderr"], run["stderr"]
    lines = [line for line in run["stderr"].splitlines() if line.startswith("error:")]
    assert len(lines) == len(bombs)
    for name in bombs:
        assert sum(f"/{name}'" in line and "decompression bomb" in line for line in lines) == 1, (name, lines)
    data = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [r["path"] for r in data["results"]] == [str(good)]
    assert {Path(e["path"]).name for e in data["errors"]} == set(bombs)
    # Decoding even the smallest bomb would add ≥ 169 MB (grey) + 507 MB (RGB); the 10 GP one, 30 GB.
    assert run["peak_rss"] < 1.5e9, run["peak_rss"]
    assert run["peak_rss"] < baseline["peak_rss"] + 150e6, (run["peak_rss"], baseline["peak_rss"])
