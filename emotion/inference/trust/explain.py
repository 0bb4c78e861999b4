"""What the model looked at: a saliency map per face, over the 48×48 face the classifier saw.

Two methods, one result (an (N, 48, 48) float map in [0, 1], 1 where the evidence for the class is):

* ``gradcam`` (Selvaraju et al., 2017): the activation after the net's last convolution (found by a
  forward pass, so it needs no layer name and works for our nets and for timm's: see ``_last_spatial``),
  weighted by the class score's mean gradient per channel, rectified, and resized to the face. Measured
  on the sample, two nearby choices fail the deletion check: the head's 2×2 pooling, and the convolution's
  own output before its normalisation and ReLU (masking the map's top 20 % then hurt less than the bottom 20 %).
* ``occlusion`` (Zeiler & Fergus, 2014): the fall in the class's probability when an 8×8 patch (stride 4)
  is replaced by the face's mean grey, for any net, the ONNX runtime included; 144 classifier passes a face.

``auto`` is occlusion: on the sample's faces its map passes the deletion check (masking the map's top 20 %
of pixels lowers the class's probability more than masking a random 20 %) by a wide margin for all three
shipped models, and Grad-CAM's, at our nets' 5×5 last maps, for none (``experiments/results/explain.md``, written by
``experiments/bench_explain.py``, which also gives each method's cost).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from emotion.data.preprocess import FER_SIZE, to_model_input

__all__ = ["EXPLAIN_METHODS", "gradcam", "occlusion", "saliency", "overlay", "delete_top"]

EXPLAIN_METHODS = ("auto", "gradcam", "occlusion")
PATCH, STRIDE = 8, 4


def _last_spatial(model: nn.Module, x: torch.Tensor) -> nn.Module | None:
    """The layer Grad-CAM reads: the last ``Conv2d`` to run (output at least 2×2) or, where layers that keep
    its map's size follow it (normalisation, the activation, a residual block's final ReLU), the last of
    those, so that the map is the rectified activation Grad-CAM assumes. ``None``: no convolution."""
    ran: list[tuple[nn.Module, tuple[int, ...]]] = []

    def hook(module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.ndim == 4 and min(output.shape[-2:]) >= 2:
            ran.append((module, tuple(output.shape[-3:])))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(m.children())]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    convs = [i for i, (m, _) in enumerate(ran) if isinstance(m, nn.Conv2d)]
    if not convs:
        return None
    last = convs[-1]
    while last + 1 < len(ran) and ran[last + 1][1] == ran[convs[-1]][1]:
        last += 1
    return ran[last][0]


def gradcam(model: nn.Module, faces: np.ndarray, targets: Sequence[int], input_size: int = FER_SIZE) -> np.ndarray:
    """Grad-CAM maps (N, 48, 48) in [0, 1] of ``targets`` (a class id per face) for uint8 ``faces`` (N, 48, 48).

    Raises:
        ValueError: the net has no convolution (use occlusion).
    """
    x = to_model_input(faces, input_size).to(next(model.parameters()).device)
    layer = _last_spatial(model, x)
    if layer is None:
        raise ValueError(f"{type(model).__name__} has no convolution for Grad-CAM; use occlusion")
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        output.retain_grad()
        store["act"] = output

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x.requires_grad_(True)  # so the activations carry gradients without touching the weights
            logits = model(x)
            picked = logits[torch.arange(len(x)), torch.as_tensor(list(targets), device=logits.device)]
            picked.sum().backward()
    finally:
        handle.remove()
    act, grad = store["act"].detach().float(), store["act"].grad.float()
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    cam = nn.functional.interpolate(cam, size=faces.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return _unit(cam.cpu().numpy())


def occlusion(classify, faces: np.ndarray, targets: Sequence[int], chunk: int = 16) -> np.ndarray:
    """Occlusion maps (N, 48, 48) in [0, 1]: ``classify`` maps uint8 faces (M, 48, 48) to probabilities (M, C);
    ``chunk`` faces' occluded copies go to it at once."""
    n, h, w = faces.shape
    spots = [(y, x) for y in range(0, h - PATCH + 1, STRIDE) for x in range(0, w - PATCH + 1, STRIDE)]
    masks = np.zeros((len(spots), h, w), bool)
    for k, (y, x) in enumerate(spots):
        masks[k, y:y + PATCH, x:x + PATCH] = True
    cover = masks.sum(0).astype(np.float32)
    targets = np.asarray(targets)
    maps = np.zeros((n, h, w), np.float32)
    for start in range(0, n, chunk):
        part = faces[start:start + chunk]
        grey = np.round(part.reshape(len(part), -1).mean(1)).astype(np.uint8)
        copies = np.repeat(part[:, None], len(spots), axis=1)  # (m, spots, h, w)
        copies[:, masks] = grey[:, None]
        probs = classify(np.concatenate([part, copies.reshape(-1, h, w)]))
        t = targets[start:start + len(part)]
        base = probs[np.arange(len(part)), t]
        drop = base[:, None] - probs[len(part):].reshape(len(part), len(spots), -1)[np.arange(len(part)), :, t]
        maps[start:start + len(part)] = np.tensordot(drop, masks.astype(np.float32), axes=(1, 0)) / cover
    return _unit(np.maximum(maps, 0))


def saliency(predictor, faces: np.ndarray, targets: Sequence[int] | None = None, method: str = "auto") -> np.ndarray:
    """Maps (N, 48, 48) in [0, 1] for the faces a :class:`~emotion.inference.FaceEmotionPredictor` saw, of
    ``targets`` (default: each face's most probable class), by ``method`` (:data:`EXPLAIN_METHODS`)."""
    if method not in EXPLAIN_METHODS:
        from emotion.errors import EmotionError

        raise EmotionError(f"explain method {method!r}: choose one of {', '.join(EXPLAIN_METHODS)}.")
    faces = np.asarray(faces, np.uint8).reshape(-1, *np.shape(faces)[-2:])  # a single face too
    if not len(faces):
        return np.zeros((0, *faces.shape[1:]), np.float32)
    if targets is None:
        targets = predictor.classify(faces, tta="none").argmax(1).tolist()
    if method == "gradcam":
        if getattr(predictor, "runtime", "torch") != "torch":
            from emotion.errors import EmotionError

            raise EmotionError("Grad-CAM needs the torch runtime; use method 'occlusion' with ONNX Runtime.")
        try:
            return gradcam(predictor.model, faces, targets, predictor.input_size)
        except ValueError as e:
            from emotion.errors import EmotionError

            raise EmotionError(str(e)) from None
    return occlusion(lambda f: predictor.classify(f, tta="none"), faces, targets)


def _unit(maps: np.ndarray) -> np.ndarray:
    """Each map scaled to [0, 1] by its own maximum (an all-zero map stays zero)."""
    top = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return (maps / np.where(top > 0, top, 1)).astype(np.float32)


# Anchors of a perceptually ordered dark-to-bright colour map (close to matplotlib's "inferno").
_MAP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)


def overlay(face: np.ndarray, saliency_map: np.ndarray, side: int = 144, alpha: float = 0.75) -> Image.Image:
    """The 48×48 face (grey) with its map in colour over it, ``side`` px square (RGB): the colour's weight
    grows with the map, so where the model did not look the face shows through."""
    m = np.clip(saliency_map, 0, 1)
    t = m * (len(_MAP) - 1)
    lo = np.floor(t).astype(int).clip(0, len(_MAP) - 2)
    colour = _MAP[lo] + (_MAP[lo + 1] - _MAP[lo]) * (t - lo)[..., None]
    grey = np.repeat(np.asarray(face, np.float32)[..., None], 3, axis=2)
    weight = (alpha * m)[..., None]
    blend = (1 - weight) * grey + weight * colour
    return Image.fromarray(blend.clip(0, 255).astype(np.uint8)).resize((side, side), Image.Resampling.BILINEAR)


def delete_top(faces: np.ndarray, maps: np.ndarray, share: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Copies of ``faces`` with a ``share`` of their pixels set to the face's mean grey: the map's highest, or
    (with ``rng``) a random set of the same size. The deletion check's one step."""
    out = np.array(faces, np.uint8, copy=True)
    k = int(round(share * faces.shape[1] * faces.shape[2]))
    for i in range(len(out)):
        flat = out[i].reshape(-1)
        pick = rng.choice(flat.size, k, replace=False) if rng is not None else np.argsort(-maps[i].reshape(-1))[:k]
        flat[pick] = np.uint8(round(float(faces[i].mean())))
    return out
