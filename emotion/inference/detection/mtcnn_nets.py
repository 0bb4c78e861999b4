"""facenet-pytorch's three MTCNN nets and box arithmetic, with its weights shipped in this package.

From facenet-pytorch 2.6.0 (``facenet_pytorch/models/mtcnn.py`` and ``models/utils/detect_face.py``,
MIT License, Copyright (c) 2019 Timothy Esler; ``emotion/assets/mtcnn/LICENSE-facenet-pytorch.md``),
the weights converted once from its ``data/*.pt`` to safetensors. Carried here because
facenet-pytorch's metadata pins torch <= 2.3, numpy < 2 and Pillow < 10.3, so it cannot be a declared
dependency, and without it a plain ``pip install`` could not detect faces. ``tests/test_mtcnn.py``
checks these weights against the installed package, tensor for tensor, and the detections against
its ``MTCNN.detect``. Layers and forward passes are facenet's, unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from emotion.inference.native import torchvision_nms
from emotion.resources import ASSETS_DIR

__all__ = ["PNet", "RNet", "ONet", "load_nets", "generateBoundingBox", "batched_nms_numpy", "bbreg", "pad", "rerec",
           "WEIGHTS_DIR"]

WEIGHTS_DIR = ASSETS_DIR / "mtcnn"


class PNet(nn.Module):
    """MTCNN's proposal net."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """MTCNN's refinement net."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """MTCNN's output net: score, box and the five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu4(self.conv4(self.pool3(self.prelu3(self.conv3(x))))).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def load_nets() -> tuple[PNet, RNet, ONet]:
    """The three nets with facenet-pytorch's trained weights (tensors only: safetensors)."""
    from safetensors.torch import load_file

    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, ("pnet", "rnet", "onet")):
        net.load_state_dict(load_file(WEIGHTS_DIR / f"{name}.safetensors"))
    return nets


# -- facenet-pytorch's box arithmetic (detect_face.py), unchanged but for names and comments --------------
def bbreg(boundingbox: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    if reg.shape[1] == 1:
        reg = torch.reshape(reg, (reg.shape[2], reg.shape[3]))
    w = boundingbox[:, 2] - boundingbox[:, 0] + 1
    h = boundingbox[:, 3] - boundingbox[:, 1] + 1
    b1 = boundingbox[:, 0] + reg[:, 0] * w
    b2 = boundingbox[:, 1] + reg[:, 1] * h
    b3 = boundingbox[:, 2] + reg[:, 2] * w
    b4 = boundingbox[:, 3] + reg[:, 3] * h
    boundingbox[:, :4] = torch.stack([b1, b2, b3, b4]).permute(1, 0)
    return boundingbox


def generateBoundingBox(reg: torch.Tensor, probs: torch.Tensor, scale: float,  # noqa: N802 - facenet's name
                        thresh: float) -> tuple[torch.Tensor, torch.Tensor]:
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= thresh
    mask_inds = mask.nonzero()
    image_inds = mask_inds[:, 0]
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    bb = mask_inds[:, 1:].type(reg.dtype).flip(1)
    q1 = ((stride * bb + 1) / scale).floor()
    q2 = ((stride * bb + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1), image_inds


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str) -> np.ndarray:
    if boxes.size == 0:
        return np.empty((0, 3))
    x1, y1, x2, y2 = (boxes[:, i].copy() for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = np.zeros_like(scores, dtype=np.int16)
    counter = 0
    while order.size > 0:
        i = order[-1]
        pick[counter] = i
        counter += 1
        idx = order[0:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[idx]) - np.maximum(x1[i], x1[idx]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[idx]) - np.maximum(y1[i], y1[idx]) + 1)
        inter = w * h
        if method == "Min":
            o = inter / np.minimum(area[i], area[idx])
        else:
            o = inter / (area[i] + area[idx] - inter)
        order = order[np.where(o <= threshold)]
    return pick[:counter].copy()


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """``torchvision.ops.nms`` without importing torchvision (~1.1 s of start-up): its compiled op where it
    loads (:func:`emotion.inference.native.torchvision_nms`), else :func:`nms_numpy`."""
    op = torchvision_nms()
    if op is not None:
        return op(boxes, scores, threshold)
    return nms_numpy(boxes, scores, threshold)


def nms_numpy(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """``torchvision.ops.nms``, exactly (its stable descending sort, its float32 IoU, suppression above
    ``threshold``), in numpy: greedy, each kept box suppressing the rest at once, so the cost is the kept
    boxes times the candidates (several times the compiled op's). ``tests/test_mtcnn.py`` checks it."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, stable=True, descending=True).indices
    b = boxes[order].detach().cpu().numpy()
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    n = len(b)
    removed = np.zeros(n, dtype=bool)
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):  # two empty boxes: 0/0, never above the threshold
        for i in range(n):
            if removed[i]:
                continue
            keep.append(i)
            w = np.maximum(np.minimum(x2[i], x2[i + 1:]) - np.maximum(x1[i], x1[i + 1:]), 0)
            h = np.maximum(np.minimum(y2[i], y2[i + 1:]) - np.maximum(y1[i], y1[i + 1:]), 0)
            inter = w * h
            removed[i + 1:] |= inter / (areas[i] + areas[i + 1:] - inter) > threshold
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms_numpy(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, threshold: float,
                      method: str) -> torch.Tensor:
    device = boxes.device
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=device)
    # An offset per class, so that boxes of different classes never overlap.
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    keep = _nms_numpy((boxes + offsets[:, None]).cpu().numpy(), scores.cpu().numpy(), threshold, method)
    return torch.as_tensor(keep, dtype=torch.long, device=device)


def pad(boxes: torch.Tensor, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    boxes = boxes.trunc().int().cpu().numpy()
    x, y, ex, ey = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    return y, ey, x, ex


def rerec(bbox: torch.Tensor) -> torch.Tensor:
    h = bbox[:, 3] - bbox[:, 1]
    w = bbox[:, 2] - bbox[:, 0]
    side = torch.max(w, h)
    bbox[:, 0] = bbox[:, 0] + w * 0.5 - side * 0.5
    bbox[:, 1] = bbox[:, 1] + h * 0.5 - side * 0.5
    bbox[:, 2:4] = bbox[:, :2] + side.repeat(2, 1).permute(1, 0)
    return bbox
