"""``FaceEmotionPredictor``: every face of a photo → its expression, in one classifier batch."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from emotion.checkpoint import BUNDLED_MODELS, model_source
from emotion.data.classes import CLASS_NAMES
from emotion.data.preprocess import FER_SIZE, to_fer_face, to_model_input
from emotion.device import native_bf16
from emotion.inference.detection.crop import DEFAULT_MARGIN, crop_face
from emotion.inference.detection.detector import DETECT_MAX_SIDE, Detections, FaceDetector, MinFace
from emotion.inference.images import MAX_PIXELS, ImageSource, load_image
from emotion.inference.results import FaceResult, ImageResult
from emotion.inference.runtime import load_classifier
from emotion.inference.trust.quality import ABSTAIN, MIN_QUALITY, UNCERTAIN, check_threshold, decide, face_quality
from emotion.models.tta import check_tta, predict_proba

__all__ = ["FaceEmotionPredictor"]


class _Tempered(nn.Module):
    """Logits divided by a calibration temperature, so ``predict_proba``'s softmax is calibrated."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


class FaceEmotionPredictor:
    """Detect all faces in an image and classify their expressions.

    Each face is cropped with a margin matched to FER2013's framing, optionally rotated so the
    eyes are level, reduced to 48×48 grayscale by :func:`~emotion.data.to_fer_face` (exactly as
    the training data were made) and classified with the other faces of the image in one batch.

    Example::

        p = FaceEmotionPredictor.from_checkpoint()          # the bundled model
        result = p("group.jpg")
        for face in result.faces:
            print(face.box, face.label, face.confidence)
        p.annotate("group.jpg", result).save("group_annotated.png")

    Args:
        model: a trained classifier returning logits, as :func:`~emotion.load_model` gives (its
            ``hparams`` and ``meta`` are read when present), or its ONNX Runtime twin
            (:class:`~emotion.inference.runtime.OnnxClassifier`).
        margin: context around the detector's box, per side, as a fraction of its longer side.
        align: rotate each face so the eye line is horizontal.
        tta: test-time augmentation of each face: ``none``, ``flip`` (with its mirror image) or
            ``tencrop``; ``True`` means ``flip``.
        min_face: smallest face searched for and kept, in pixels (box's longer side); ``None``:
            :meth:`~emotion.inference.detection.detector.FaceDetector.min_face_for` each photo (20 searches all).
        min_score: ignore detections less certain than this.
        detect_max_side: search for faces on a copy of the photo downscaled to this longest side.
        max_pixels: refuse images larger than this (decompression-bomb guard; ``None``: no limit).
        bf16: run the classifier under bf16 autocast; ``None``: where the device computes bf16
            natively (a CPU with AVX-512 BF16 or AMX, a bf16 GPU), which is several times faster.
        faces_are_crops: each image is one already-cropped face (a folder like FER2013's own):
            no detection, margin or alignment; its box is the whole image, with score 1.
        min_quality: a face whose quality (:class:`~emotion.inference.trust.FaceQuality`'s ``overall``) is
            below this is labelled ``"uncertain"`` (its probabilities kept); 0 labels every face. The
            default holds back the faces the model gets wrong more often than right
            (``experiments/results/quality.md``).
        abstain: a face whose calibrated top probability is below this is labelled ``"uncertain"``; 0
            labels every face. Default chosen by the same rule.
    """

    def __init__(self, model: nn.Module, *, margin: float = DEFAULT_MARGIN, align: bool = True,
                 tta: str | bool = "none", min_face: MinFace | float | None = None, min_score: float = 0.9,
                 detect_max_side: int = DETECT_MAX_SIDE, max_pixels: int | None = MAX_PIXELS,
                 bf16: bool | None = None, faces_are_crops: bool = False, min_quality: float = MIN_QUALITY,
                 abstain: float = ABSTAIN) -> None:
        self.model = model.eval()
        #: where the model came from, as results documents name it (set by from_checkpoint).
        self.checkpoint = "in memory"
        self.runtime: str = getattr(model, "runtime", "torch")
        self.device = model.device if hasattr(model, "device") else next(model.parameters()).device
        hparams = getattr(model, "hparams", {})
        self.class_names: list[str] = list(hparams.get("class_names") or CLASS_NAMES)
        self.input_size = int(hparams.get("input_size", FER_SIZE))
        meta = getattr(model, "meta", None) or {}
        self.temperature = float(meta.get("temperature") or 1.0)
        self._scored = _Tempered(self.model, self.temperature) if self.temperature != 1.0 else self.model
        self.margin = float(margin)
        self.align = bool(align)
        self.tta = check_tta(tta)
        if bf16 is None:
            bf16 = native_bf16(self.device)
        self.bf16 = bool(bf16) and self.runtime == "torch"  # ONNX Runtime runs the graph as exported
        self.max_pixels = max_pixels
        self.faces_are_crops = bool(faces_are_crops)
        self.min_quality = check_threshold("min_quality", min_quality)
        self.abstain = check_threshold("abstain", abstain)
        self.detector = FaceDetector(self.device, min_face=min_face, min_score=min_score,
                                     max_side=detect_max_side)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, device: str | torch.device | None = None,
                        runtime: str = "torch", **kwargs: Any) -> "FaceEmotionPredictor":
        """Load a ``.ckpt`` or an exported model folder (``None``: the bundled model) and wrap it.

        Args:
            path: checkpoint or exported folder, a bundled model's name (``default``, or ``fast``
                for video and bulk work); ``None`` for ``emotion/assets/default_model``.
            device: ``cpu``, ``cuda``, … (default: the best available; ``onnx`` runs on the CPU).
            runtime: ``torch``, or ``onnx`` for ONNX Runtime
                (see :func:`~emotion.inference.runtime.load_classifier`).
            **kwargs: passed to the constructor (``margin``, ``align``, ``tta``, ``min_face``, …).
        """
        predictor = cls(load_classifier(path, runtime=runtime, device=device), **kwargs)
        predictor.checkpoint = "bundled" if path is None else str(path)
        if path is not None and str(path) in BUNDLED_MODELS and model_source(path) == BUNDLED_MODELS[str(path)]:
            predictor.checkpoint = f"bundled:{path}"
        return predictor

    # -- the steps ---------------------------------------------------------------------
    def faces(self, image: Image.Image, detections: Detections) -> np.ndarray:
        """The 48×48 uint8 grayscale faces (N, 48, 48) the classifier sees for ``detections``."""
        if len(detections) == 0:
            return np.zeros((0, FER_SIZE, FER_SIZE), np.uint8)
        # Grey first, as to_fer_face would: each crop then resamples one channel instead of three.
        gray = image.convert("L")
        crops = [to_fer_face(crop_face(gray, box, pts, margin=self.margin, align=self.align))
                 for box, pts in zip(detections.boxes, detections.landmarks)]
        return np.stack(crops)

    @torch.inference_mode()
    def classify(self, faces: np.ndarray, tta: str | None = None) -> np.ndarray:
        """Class probabilities (N, C) for uint8 faces (N, 48, 48), as one batch, under ``tta``
        (default: the predictor's)."""
        if len(faces) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        x = to_model_input(faces, self.input_size).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            probs = predict_proba(self._scored, x, self.tta if tta is None else tta)
        return probs.float().cpu().numpy()

    def classify_many(self, face_sets: Sequence[np.ndarray | None], tta: str | None = None) -> list[np.ndarray | None]:
        """Classify the faces of many images (or requests) as one batch and hand each its own rows back:
        ``face_sets[i]`` (N_i, 48, 48) uint8 → probabilities (N_i, C); ``None`` (an image that failed)
        stays ``None``. The one home of "batch across images, split back" for bulk, Ray and the service."""
        present = [f for f in face_sets if f is not None and len(f)]
        probs = self.classify(np.concatenate(present), tta) if present else None
        out: list[np.ndarray | None] = []
        start = 0
        for faces in face_sets:
            if faces is None:
                out.append(None)
            elif not len(faces):
                out.append(np.zeros((0, len(self.class_names)), np.float32))
            else:
                out.append(probs[start:start + len(faces)])
                start += len(faces)
        return out

    def find_faces(self, image: Image.Image, *, min_face: MinFace | None = None,
                   faces_are_crops: bool | None = None) -> tuple[Detections, np.ndarray]:
        """The faces of an upright RGB image: their detections and the 48×48 uint8 crops (N, 48, 48)
        the classifier sees. With :meth:`classify` and :meth:`result` this is :meth:`predict_rgb`,
        split so that a server can classify the faces of several images in one batch. ``min_face``
        and ``faces_are_crops`` override the predictor's own for this image."""
        if self.faces_are_crops if faces_are_crops is None else faces_are_crops:
            w, h = image.size
            return Detections(np.array([[0.0, 0.0, w, h]]), np.ones(1), None), to_fer_face(image)[None]
        det = self.detector(image, min_face=min_face)
        return det, self.faces(image, det)

    def result(self, size: tuple[int, int], detections: Detections, faces: np.ndarray, probs: np.ndarray,
               path: str | None = None, frame: int | None = None, time_s: float | None = None,
               per_face: list[dict[str, Any]] | None = None, min_quality: float | None = None,
               abstain: float | None = None) -> ImageResult:
        """The :class:`ImageResult` of an image of ``size`` from its faces and their probabilities;
        ``per_face`` adds fields to each :class:`FaceResult`, in detection order (a video's tracks);
        ``min_quality`` and ``abstain`` override the predictor's own for this image."""
        w, h = size
        min_quality = self.min_quality if min_quality is None else check_threshold("min_quality", min_quality)
        abstain = self.abstain if abstain is None else check_threshold("abstain", abstain)
        qualities = face_quality(detections.boxes, detections.scores, detections.landmarks, faces,
                                 aligned=self.align and not self.faces_are_crops)
        results = []
        # Left to right, so that the numbers on a figure read naturally.
        boxes = detections.boxes
        for i in sorted(range(len(detections)), key=lambda k: (boxes[k, 0] + boxes[k, 2], boxes[k, 1])):
            x1, y1, x2, y2 = boxes[i]
            box = (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))
            p = probs[i].astype(np.float64)
            p = p / p.sum()  # float32 softmax sums to 1 ± 1e-7; make the JSON exact-ish
            marks = detections.landmarks
            why = decide(float(p.max()), qualities[i], min_quality, abstain)
            results.append(FaceResult(
                box=tuple(float(v) for v in box),
                score=float(detections.scores[i]),
                landmarks=None if marks is None else tuple((float(x), float(y)) for x, y in marks[i]),
                label=UNCERTAIN if why else self.class_names[int(p.argmax())],
                probabilities={name: float(v) for name, v in zip(self.class_names, p)},
                crop=faces[i], quality=qualities[i], uncertain=why,
                **(per_face[i] if per_face is not None else {}),
            ))
        return ImageResult(path=path, size=(w, h), faces=results, frame=frame, time_s=time_s)

    def predict_rgb(self, image: Image.Image, path: str | None = None, frame: int | None = None,
                    time_s: float | None = None) -> ImageResult:
        """Detect and classify on an already loaded, upright RGB image (e.g. a video frame)."""
        det, faces = self.find_faces(image)
        return self.result(image.size, det, faces, self.classify(faces), path=path, frame=frame, time_s=time_s)

    def explain(self, image: ImageSource, method: str = "auto") -> ImageResult:
        """:meth:`__call__`, with each face's saliency map (:attr:`FaceResult.saliency`): where on the 48×48
        face the evidence for its predicted class lies. ``method``: ``auto`` (occlusion), ``occlusion`` or
        ``gradcam`` (:mod:`emotion.inference.trust.explain`). Draw one with
        :func:`~emotion.inference.trust.explain.overlay` (``overlay(face.crop, face.saliency)``)."""
        return self.explain_result(self(image), method)

    def explain_result(self, result: ImageResult, method: str = "auto") -> ImageResult:
        """``result`` with each face's saliency map filled in (see :meth:`explain`)."""
        from dataclasses import replace

        from emotion.inference.trust.explain import saliency

        if not result.faces:
            return result
        faces = np.stack([f.crop for f in result.faces])
        targets = [self.class_names.index(f.predicted) for f in result.faces]
        maps = saliency(self, faces, targets, method)
        return replace(result, faces=[replace(f, saliency=m) for f, m in zip(result.faces, maps)])

    def video(self, source: str | int | os.PathLike, **options: Any):
        """Every frame of a video (a file, a webcam index or a stream URL) with face tracks and
        smoothed emotions, as a :class:`~emotion.inference.video.VideoResult` (``.to_pandas()``,
        ``.tracks``). ``options``: :func:`~emotion.inference.video.iter_video_results`'s
        (``every``, ``detect_every``, ``smooth_s``, …)."""
        from emotion.inference.video import analyze_video

        return analyze_video(self, source, **options)

    def describe(self) -> dict[str, Any]:
        """The model and settings behind every result, as ``predictions.json`` records them."""
        return {
            "model": {"checkpoint": self.checkpoint, "arch": getattr(self.model, "hparams", {}).get("arch"),
                      "class_names": self.class_names, "temperature": self.temperature},
            "settings": {"margin": self.margin, "align": self.align, "tta": self.tta,
                         "min_face": self.detector.min_face.px or "auto", "min_score": self.detector.min_score,
                         "device": str(self.device), "runtime": self.runtime,
                         "faces_are_crops": self.faces_are_crops, "min_quality": self.min_quality,
                         "abstain": self.abstain},
        }

    def __call__(self, image: ImageSource) -> ImageResult:
        """Detect and classify every face in ``image`` (a path, PIL image or RGB numpy array).

        Raises:
            EmotionError: the image cannot be read (missing, not an image, truncated, too large).
        """
        rgb, path = load_image(image, max_pixels=self.max_pixels)
        return self.predict_rgb(rgb, path=path)

    def annotate(self, image: ImageSource, result: ImageResult) -> Image.Image:
        """A figure: boxes and labels on the photo, beside it each 48×48 face with its probabilities."""
        from emotion.inference.outputs.annotate import draw_figure

        rgb, _ = load_image(image, max_pixels=self.max_pixels)
        return draw_figure(rgb, result, self.class_names)

    def __repr__(self) -> str:
        arch = getattr(self.model, "hparams", {}).get("arch", type(self.model).__name__)
        return (f"FaceEmotionPredictor(arch={arch!r}, runtime={self.runtime!r}, device={self.device}, "
                f"margin={self.margin}, "
                f"align={self.align}, tta={self.tta!r}, bf16={self.bf16}, temperature={self.temperature}, "
                f"min_quality={self.min_quality}, abstain={self.abstain}"
                + (", faces_are_crops=True)" if self.faces_are_crops else ")"))
