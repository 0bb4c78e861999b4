"""MTCNN as facenet-pytorch computes it, with every resampling read off one summed-area table.

facenet-pytorch's ``detect_face`` resamples the photo once per pyramid level and then every
candidate window on its own, one ``F.interpolate(mode="area")`` call each: several hundred calls
per photo, most of its time. Area resampling averages the pixels of integer-bounded bins
(``adaptive_avg_pool2d``), so a bin's mean is four look-ups in the photo's summed-area table,
and every level and every window, of every candidate at once, comes from the same table. The
nets, weights, thresholds, pyramid, box arithmetic and NMS are facenet's own (carried in
:mod:`emotion.inference.detection.mtcnn_nets`); the results differ
from ``MTCNN.detect`` by float rounding only (``tests/test_mtcnn.py`` compares the two, and
``experiments/detection_check.py`` on labelled composites).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from emotion.inference.detection.detections import Detections
from emotion.inference.detection.mtcnn_nets import (
    batched_nms_numpy,
    bbreg,
    generateBoundingBox,
    load_nets,
    nms,
    pad,
    rerec,
)

__all__ = ["MTCNN", "integral_image", "area_resample", "area_resize"]


def integral_image(rgb: torch.Tensor) -> torch.Tensor:
    """Summed-area table (H+1, W+1, C) of an (H, W, C) uint8 image, with a zero first row and column.

    Integer sums are exact; int32 holds any image of up to 8.4 million pixels.
    """
    h, w, _ = rgb.shape
    dtype = torch.int32 if 255 * h * w < 2**31 else torch.int64
    sat = torch.nn.functional.pad(rgb, (0, 0, 1, 0, 1, 0)).to(dtype)  # a zero row on top, a zero column left
    # In place: a fresh 10-MB tensor per pass costs more in page faults than the sums themselves.
    torch.cumsum(sat, 0, out=sat)
    torch.cumsum(sat, 1, out=sat)
    return sat


def _bins(start: torch.Tensor, length: torch.Tensor, out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``adaptive_avg_pool``'s ``out`` bins over ``[start, start + length)``: (N, out) first and end indices."""
    i = torch.arange(out, device=start.device)
    lo = start[:, None] + torch.div(i * length[:, None], out, rounding_mode="floor")
    hi = start[:, None] - torch.div(-(i + 1) * length[:, None], out, rounding_mode="floor")  # ceil
    return lo, hi


def area_resample(sat: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor,
                  out_h: int, out_w: int) -> torch.Tensor:
    """Windows ``[y0, y1) × [x0, x1)`` of the image behind ``sat``, each area-resampled to out_h × out_w.

    Equal to ``F.interpolate(window, (out_h, out_w), mode="area")`` for every window (up to the
    rounding of one division), all N at once. Returns (N, C, out_h, out_w) float32, channels-last.
    """
    ylo, yhi = _bins(y0, y1 - y0, out_h)
    xlo, xhi = _bins(x0, x1 - x0, out_w)
    # All four corners of every bin in one gather: (2 rows, 2 columns, N, out_h, out_w, C).
    rows = torch.stack([yhi, ylo])[:, None, :, :, None] * sat.shape[1]
    cols = torch.stack([xhi, xlo])[None, :, :, None, :]
    index = rows + cols
    # index_select, not advanced indexing: the same values to the bit, in 0.62x the time for a photo's R-Net and
    # O-Net windows (experiments/results/bench_mtcnn_levers.md).
    c = sat.view(-1, sat.shape[2]).index_select(0, index.reshape(-1)).view(*index.shape, sat.shape[2])
    total = c[0, 0] - c[1, 0] - c[0, 1] + c[1, 1]
    area = ((yhi - ylo)[:, :, None] * (xhi - xlo)[:, None, :]).float()
    return (total.float() / area[..., None]).permute(0, 3, 1, 2)


def area_resize(sat: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """The whole image behind ``sat`` area-resampled to out_h × out_w: :func:`area_resample` of one window
    covering it, to the bit, computed one axis at a time (a pyramid level is one bin grid for every
    row and column, so the corners are two row gathers and two column gathers rather than four
    gathers per output value). Returns (1, C, out_h, out_w) float32, channels-last.

    Measured on a 960×540 frame, 2 threads (AMD EPYC): 1.9 ms against 4.4 ms for the finest level of
    the video search (577×325), 0.6 against 0.9 ms for a level a quarter its size.
    """
    whole = torch.zeros(1, dtype=torch.int64, device=sat.device)
    ylo, yhi = (v[0] for v in _bins(whole, whole + sat.shape[0] - 1, out_h))
    xlo, xhi = (v[0] for v in _bins(whole, whole + sat.shape[1] - 1, out_w))
    rows = sat.index_select(0, yhi) - sat.index_select(0, ylo)
    total = rows.index_select(1, xhi) - rows.index_select(1, xlo)
    area = ((yhi - ylo)[:, None] * (xhi - xlo)[None, :]).float()
    return (total.float() / area[..., None]).permute(2, 0, 1)[None]


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    """facenet's input scaling, (x - 127.5) / 128, laid out channels-last."""
    return ((pixels - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


def _batched(net: torch.nn.Module, x: torch.Tensor, size: int = 64) -> tuple[torch.Tensor, ...]:
    """``net(x)`` in chunks: a few dozen windows keep the activations in cache (about 2x faster)."""
    outs = [net(x[i:i + size]) for i in range(0, len(x), size)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


class MTCNN:
    """facenet-pytorch's three-stage MTCNN (its shipped weights) for one RGB image at a time.

    Args:
        device: where the three nets run.
        thresholds: face-probability cut of each stage (facenet's defaults).
        factor: scale step between pyramid levels.
    """

    #: Where refine looks, in steps of ``shift`` × the box side: the expected place and one step each way. A
    #: 3×3 grid found no more faces on the street clip (recall 76.2 % both, detect every 3) at 1.8× the windows.
    REFINE_OFFSETS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))

    def __init__(self, device: str | torch.device = "cpu", thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709) -> None:
        self.device = torch.device(device)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        # channels_last: 2-3x faster than NCHW for these few-channel convolutions and poolings on CPU.
        self.pnet, self.rnet, self.onet = (net.eval().to(self.device, memory_format=torch.channels_last)
                                           for net in load_nets())
        heads = (self.pnet.conv4_1, self.pnet.conv4_2)  # face/not-face logits, box regression
        self._heads_weight = torch.cat([h.weight for h in heads])[:, :, 0, 0].T.detach()  # (32, 6)
        self._heads_bias = torch.cat([h.bias for h in heads]).detach()

    def scales(self, h: int, w: int, min_face: float, anchor: float | None = None) -> list[float]:
        """The pyramid's scales: facenet's pyramid for faces from ``anchor`` px (default: min_face) on,
        from its level nearest to ``min_face``.

        Level k searches faces of about ``anchor / factor^k`` px, down to a 12-px short side. Every
        face is at most half a step from a level; the levels finer than the one nearest to
        ``min_face`` are skipped. So a larger ``min_face`` keeps the ``anchor`` pyramid's own levels,
        and finds the larger faces where ``anchor`` does.
        """
        anchor = min_face if anchor is None else min(anchor, min_face)
        m = 12.0 / anchor
        minl = min(h, w) * m
        out, scale = [], m
        while minl >= 12:
            out.append(scale)
            scale *= self.factor
            minl *= self.factor
        return [s for s in out if 12.0 / s * self.factor ** -0.5 >= min_face]

    def _pnet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net's box regression (1, 4, h, w) and face probability (1, h, w).

        Both heads as one 1×1 convolution, and the two-class softmax's face column as
        sigmoid(l1 - l0), its equal: cheaper than facenet's forward on the large levels.
        """
        p = self.pnet
        x = p.prelu3(p.conv3(p.prelu2(p.conv2(p.pool1(p.prelu1(p.conv1(x)))))))
        # A 1×1 convolution over channels-last activations is a matrix product (and a faster one).
        out = torch.addmm(self._heads_bias, x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]), self._heads_weight)
        out = out.view(x.shape[0], x.shape[2], x.shape[3], -1).permute(0, 3, 1, 2)
        return out[:, 2:], torch.sigmoid(out[:, 1] - out[:, 0])

    def _windows(self, sat: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, np.ndarray]:
        """Each box's window (clipped to the photo, as facenet's ``pad``), resampled to size × size."""
        h, w = sat.shape[0] - 1, sat.shape[1] - 1
        y, ey, x, ex = pad(boxes, w, h)
        idx = np.flatnonzero((ey > y - 1) & (ex > x - 1))  # a box wholly outside the photo has no window
        y, ey, x, ex = (torch.from_numpy(v[idx].astype(np.int64)).to(sat.device) for v in (y, ey, x, ex))
        return _normalise(area_resample(sat, y - 1, ey, x - 1, ex, size, size)), idx

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray, min_face: float = 20.0, anchor: float | None = None) -> Detections:
        """Faces in an (H, W, 3) uint8 RGB array.

        Args:
            rgb: the image.
            min_face: smallest face searched for (px).
            anchor: lay the pyramid out as for this smallest face (see :meth:`scales`);
                ``None``: ``min_face``, facenet's own pyramid.
        """
        h, w = rgb.shape[:2]
        with warnings.catch_warnings():  # a read-only array (np.asarray of a PIL image): only read here
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            sat = integral_image(torch.as_tensor(rgb, device=self.device))
        t1, t2, t3 = self.thresholds
        dev = self.device
        empty = Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))

        # Stage 1: P-Net over the pyramid; NMS within each level, then across levels.
        picked = []
        for scale in self.scales(h, w, min_face, anchor):
            level = area_resize(sat, int(h * scale + 1), int(w * scale + 1))
            reg, face = self._pnet(_normalise(level))
            boxes, _ = generateBoundingBox(reg, face, scale, t1)
            picked.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])  # one image: one class
        boxes = torch.cat(picked) if picked else torch.zeros((0, 9), device=dev)
        if len(boxes) == 0:
            return empty
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], 1)
        boxes = rerec(boxes)

        # Stage 2: R-Net on every candidate's 24-px window.
        x, idx = self._windows(sat, boxes, 24)
        if len(idx) == 0:
            return empty
        boxes = boxes[torch.from_numpy(idx).to(dev)]
        mv, prob = _batched(self.rnet, x)
        keep = prob[:, 1] > t2
        boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
        mv = mv[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = rerec(bbreg(boxes[pick], mv[pick]))
        if len(boxes) == 0:
            return empty

        # Stage 3: O-Net on 48-px windows: final score, box refinement and the five landmarks.
        x, idx = self._windows(sat, boxes, 48)
        if len(idx) == 0:
            return empty
        boxes = boxes[torch.from_numpy(idx).to(dev)]
        mv, points, prob = _batched(self.onet, x)
        keep = prob[:, 1] > t3
        boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
        points, mv = points[keep], mv[keep]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = torch.stack([bw * points[:, :5] + boxes[:, 0:1] - 1, bh * points[:, 5:] + boxes[:, 1:2] - 1], 2)
        boxes = bbreg(boxes, mv)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes), device=dev), 0.7, "Min")
        boxes, points = boxes[pick].cpu().numpy(), points[pick].cpu().numpy()
        order = np.argsort(boxes[:, 4], kind="stable")[::-1]  # most confident first, as MTCNN.detect
        return Detections(boxes[order, :4], boxes[order, 4], points[order])

    @torch.inference_mode()
    def refine(self, rgb: np.ndarray, boxes: np.ndarray, shift: float = 0.15) -> Detections:
        """Find again, near each of ``boxes`` (N, 4), the face a track expects there: O-Net alone on
        five windows per box (the box squared, and moved by ``shift`` of its side each way: REFINE_OFFSETS),
        the best window taken with its box refinement and landmarks. No P-Net pyramid and no R-Net:
        a tracked face's place is already known within a fraction of its size. Each box reads only
        its own neighbourhood of ``rgb`` (a view of a full-size frame costs no more than a small one).

        Returns:
            Detections in the order of ``boxes``; a box whose best window scores under O-Net's
            threshold comes back with score 0 (not found).
        """
        n = len(boxes)
        out_boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
        scores, out_points = np.zeros(n, np.float32), np.zeros((n, 5, 2), np.float32)
        if n == 0:
            return Detections(out_boxes, scores, out_points)
        dev, (h, w) = self.device, rgb.shape[:2]
        base = rerec(torch.as_tensor(np.c_[out_boxes, np.ones(n)], dtype=torch.float32, device=dev))[:, :4]
        dx, dy = (torch.tensor(v, device=dev) * shift for v in zip(*self.REFINE_OFFSETS))
        k = len(self.REFINE_OFFSETS)
        windows, cands, owners = [], [], []
        for i in range(n):
            b = base[i]
            side = float(b[2] - b[0])
            # The neighbourhood every window of this box (and its box refinement) can reach.
            x0, y0 = max(int(b[0] - side), 0), max(int(b[1] - side), 0)
            x1, y1 = min(int(b[2] + side) + 1, w), min(int(b[3] + side) + 1, h)
            # Every step-th pixel of a large face's neighbourhood: the windows are 48 px, so the summed-area
            # table needs no more than about 48 px per face side, and the cost no longer grows with the face.
            step = max(1, int(side // 48))
            if (x1 - x0) // step < 2 or (y1 - y0) // step < 2:
                continue
            sat = integral_image(torch.from_numpy(np.ascontiguousarray(rgb[y0:y1:step, x0:x1:step])).to(dev))
            cand = torch.stack([b[0] + dx * side - x0, b[1] + dy * side - y0,
                                b[2] + dx * side - x0, b[3] + dy * side - y0, torch.zeros(k, device=dev)], 1)
            x, idx = self._windows(sat, cand / step, 48)
            if len(idx):
                windows.append(x)
                cands.append(cand[torch.from_numpy(idx).to(dev), :4] + torch.tensor([x0, y0, x0, y0], device=dev))
                owners += [i] * len(idx)
        if not windows:
            return Detections(out_boxes, scores, out_points)
        mv, points, prob = _batched(self.onet, torch.cat(windows))
        cand, owner, face = torch.cat(cands), np.asarray(owners), prob[:, 1].cpu().numpy()
        for i in np.unique(owner):
            rows = np.flatnonzero(owner == i)
            j = int(rows[face[rows].argmax()])
            if face[j] <= self.thresholds[2]:
                continue
            b = torch.cat([cand[j:j + 1], prob[j:j + 1, 1:2]], 1)
            bw, bh = float(b[0, 2] - b[0, 0] + 1), float(b[0, 3] - b[0, 1] + 1)
            p = points[j]
            out_points[i] = torch.stack([bw * p[:5] + b[0, 0] - 1, bh * p[5:] + b[0, 1] - 1], 1).cpu().numpy()
            out_boxes[i] = bbreg(b, mv[j:j + 1])[0, :4].cpu().numpy()
            scores[i] = face[j]
        return Detections(out_boxes, scores, out_points)
