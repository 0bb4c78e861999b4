"""Face tracks across video frames: supervision's ByteTrack on the detector's boxes, and the tracks
carried over the frames between two detections.

Why ByteTrack from supervision 0.30: norfair 2.3 pins numpy < 2, and ByteTrack's successor
(roboflow's ``trackers``) requires ``opencv-python``, which would install a second ``cv2`` over our
headless one. Measured on the labelled tracking check (``experiments/tracking_check.py``).

ByteTrack keeps a track through ``lost_s`` seconds of misses (a detector miss, a head turn, a
brief occlusion) and gives it back its id when the face is found again near where its Kalman
filter expects it. Between detections (``detect_every > 1``) each visible track's box moves on at
the velocity of its last two detections; its landmarks move with it. With refined tracks
(``VideoOptions.refine``) the faces are instead found again near there (:meth:`FaceTracker.found_again`)
and tracked as detections, every frame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from emotion.inference.detection.detector import Detections

__all__ = ["FaceTracker", "NO_TRACK"]

#: The track of a face ByteTrack has not (yet) confirmed; the face is still reported.
NO_TRACK = -1


@dataclass
class _Seen:
    frame: int
    box: np.ndarray  # (4,)
    landmarks: np.ndarray | None  # (5, 2)
    score: float
    velocity: np.ndarray  # box change per frame, (4,)


class FaceTracker:
    """Track ids for the faces of consecutive frames.

    Args:
        fps: the video's frame rate.
        detect_every: detections come every this many frames (the tracker's own frame rate is
            ``fps / detect_every``).
        lost_s: how long a track survives without a detection, in seconds.
        match_iou: the least IoU between a track's predicted box and a detection to join them.
        hold_s: a track the detector misses is still reported (its box carried) for this long
            after its last detection: MTCNN drops a face for a frame or two now and then.
    """

    def __init__(self, fps: float, detect_every: int = 1, lost_s: float = 1.0, match_iou: float = 0.2,
                 hold_s: float = 0.12) -> None:
        with warnings.catch_warnings():  # deprecated upstream in favour of `trackers`; see the module doc
            warnings.simplefilter("ignore", FutureWarning)
            import supervision as sv

            self._sv = sv
            rate = max(fps / max(1, detect_every), 1.0)
            # supervision counts lost frames as rate / 30 * buffer.
            self._tracker = sv.ByteTrack(track_activation_threshold=0.5, lost_track_buffer=max(1, round(lost_s * 30)),
                                         minimum_matching_threshold=1 - match_iou, frame_rate=rate,
                                         minimum_consecutive_frames=1)
        self._seen: dict[int, _Seen] = {}  # each track's last detection, for its velocity
        self._forget_after = int(lost_s * fps) + 2 * max(1, detect_every)  # frames: ByteTrack has dropped it by then
        self._hold = max(hold_s * fps, 0.0)
        # The faces of the last detection, with their tracks: those not yet confirmed are carried
        # too (as NO_TRACK), so that no face found by the detector is missing from the frames after.
        self._visible: list[tuple[int, _Seen]] = []
        self._confirmed: set[int] = set()  # the tracks the last detection found
        self._changed = True  # whether the last detection saw the scene change (see :meth:`unsettled`)

    def update(self, frame: int, detections: Detections) -> tuple[Detections, np.ndarray, np.ndarray]:
        """Track the detections of ``frame``. Returns the faces to report: the detections, then the
        tracks held through a recent miss (see ``hold_s``); their track ids (:data:`NO_TRACK` for a
        detection not yet confirmed); and which of them the detector found in this frame."""
        ids = np.full(len(detections), NO_TRACK, dtype=np.int64)
        tracked = self._tracker.update_with_detections(self._as_sv(detections))
        for index, track in zip(tracked.data.get("index", []), tracked.tracker_id):
            ids[int(index)] = int(track)
        held = [(t, s) for t, s in self._visible
                if t != NO_TRACK and t not in ids and 0 < frame - s.frame <= self._hold]
        self._visible = []
        for i, track in enumerate(int(t) for t in ids):
            box = detections.boxes[i].astype(np.float64)
            marks = None if detections.landmarks is None else detections.landmarks[i].astype(np.float64)
            before = self._seen.get(track) if track != NO_TRACK else None
            velocity = np.zeros(4)
            if before is not None and frame > before.frame:
                velocity = (box - before.box) / (frame - before.frame)
            seen = _Seen(frame, box, marks, float(detections.scores[i]), velocity)
            if track != NO_TRACK:
                self._seen[track] = seen
            self._visible.append((track, seen))
        self._seen = {k: v for k, v in self._seen.items() if frame - v.frame <= self._forget_after}
        kept = [(t, s) for t, s in held if not len(detections) or _max_iou(_moved(s, frame), detections.boxes) < 0.3]
        self._visible += kept  # still carried between detections, until the hold runs out
        confirmed = {int(t) for t in ids if t != NO_TRACK}
        self._changed = bool(kept) or confirmed != self._confirmed or len(confirmed) < len(ids)
        self._confirmed = confirmed
        if not kept:
            return detections, ids, np.ones(len(ids), dtype=bool)
        carried, carried_ids = self._boxes(kept, frame)
        both = Detections(np.concatenate([detections.boxes, carried.boxes]),
                          np.concatenate([detections.scores, carried.scores]),
                          None if detections.landmarks is None or carried.landmarks is None
                          else np.concatenate([detections.landmarks, carried.landmarks]))
        return both, np.concatenate([ids, carried_ids]), np.arange(len(both)) < len(ids)

    def tick(self) -> None:
        """A frame passes unsearched: ByteTrack's motion model steps on one frame (a tracker made with
        ``detect_every=1`` whose detections come at irregular gaps, as ``VideoOptions.adaptive`` gives
        them). Its tracks are lost for the frame and found again, with their ids, by the next detection."""
        self._tracker.update_with_detections(self._as_sv(Detections.empty()))

    def _as_sv(self, detections: Detections):
        """``detections`` as supervision's type, each with its index (ByteTrack's output keeps it)."""
        if not len(detections):
            found = self._sv.Detections.empty()
            found.data["index"] = np.zeros(0, dtype=np.int64)
            return found
        return self._sv.Detections(xyxy=detections.boxes.astype(np.float32),
                                   confidence=detections.scores.astype(np.float32),
                                   data={"index": np.arange(len(detections))})

    def carry(self, frame: int) -> tuple[Detections, np.ndarray, np.ndarray]:
        """The faces of the last detection moved on to ``frame`` (a frame not searched), as
        :meth:`update` returns them (none of them detected in this frame)."""
        dets, ids = self._boxes(self._visible, frame)
        return dets, ids, np.zeros(len(ids), dtype=bool)

    def unsettled(self, frame: int, size: tuple[int, int], gap: float = 0.5, closing: float = 0.02) -> str | None:
        """Why ``frame`` should be searched in full rather than carried (``VideoOptions.adaptive``), or
        ``None`` when carrying the tracks is safe:

        * ``"no faces"``: nothing is tracked, so a face may appear anywhere;
        * ``"changed"``: the last detection saw a face come or go, a face not yet confirmed, or one missed;
        * ``"edge"``: a carried box reaches past the frame's border (a face leaving, or half in view);
        * ``"close"``: two carried boxes within ``gap`` of a side of each other, drawing together faster
          than ``closing`` of a side per frame (a crossing, where a carried box may take the other
          face; faces side by side that move together, as under a panning camera, are left carried).
        """
        if not self._visible:
            return "no faces"
        if self._changed:
            return "changed"
        boxes = self._boxes(self._visible, frame)[0].boxes
        w, h = size
        if ((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > w) | (boxes[:, 3] > h)).any():
            return "edge"
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        g = (side * gap / 2)[:, None]
        grown = np.concatenate([boxes[:, :2] - g, boxes[:, 2:] + g], 1)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        motion = np.stack([(s.velocity[:2] + s.velocity[2:]) / 2 for _, s in self._visible])  # centre, px/frame
        for i in range(len(grown) - 1):
            for j in range(i + 1, len(grown)):
                if _max_iou(grown[i], grown[j:j + 1]) == 0:
                    continue
                apart = centre[j] - centre[i]
                # the rate at which the centres close in, px per frame, against the smaller face's side
                rate = -float(apart @ (motion[j] - motion[i])) / max(float(np.linalg.norm(apart)), 1e-6)
                if rate > closing * min(side[i], side[j]):
                    return "close"
        return None

    @staticmethod
    def found_again(carried: Detections, found: Detections) -> Detections:
        """This frame's detections for :meth:`update`, from :meth:`carry`'s faces (``carried``) looked for
        again (``found``, in the same order: :meth:`FaceDetector.refine`, score 0 where not found).

        A face found again must overlap its carried box (IoU ≥ 0.3) at a size within a factor 1.4 of it,
        and two may not take the same place (the better-scored one stands). Faces whose carried boxes
        touch are left out: at a crossing the window of one face holds the other, and taking it swapped
        the tracks (2 ID switches in each crossing scene of the tracking check). A face left out is a
        detector miss to the tracker: held for ``hold_s``, then found by the next full detection.
        """
        taken: list[int] = []
        for k in np.argsort(-found.scores, kind="stable"):
            box, was = found.boxes[k], carried.boxes[k]
            ratio = (box[2] - box[0]) / max(was[2] - was[0], 1e-6)
            others = np.delete(carried.boxes, k, axis=0)
            alone = not len(others) or _max_iou(was, others) == 0
            if (found.scores[k] > 0 and alone and 1 / 1.4 <= ratio <= 1.4 and _max_iou(box, was[None]) >= 0.3
                    and (not taken or _max_iou(box, found.boxes[taken]) < 0.5)):
                taken.append(int(k))
        return found.take(np.asarray(sorted(taken), dtype=np.int64))

    @staticmethod
    def _boxes(faces: list[tuple[int, _Seen]], frame: int) -> tuple[Detections, np.ndarray]:
        if not faces:
            return Detections.empty(), np.zeros(0, dtype=np.int64)
        boxes, scores, marks = [], [], []
        for _, s in faces:
            box = _moved(s, frame)
            boxes.append(box)
            scores.append(s.score)
            if s.landmarks is not None:
                # The points keep their place in the box: shifted with its centre, scaled with its size.
                c0, c1 = (s.box[:2] + s.box[2:]) / 2, (box[:2] + box[2:]) / 2
                k = (box[2] - box[0]) / max(s.box[2] - s.box[0], 1e-6)
                marks.append((s.landmarks - c0) * k + c1)
        landmarks = np.stack(marks) if len(marks) == len(boxes) else None
        ids = np.asarray([t for t, _ in faces], dtype=np.int64)
        return Detections(np.stack(boxes), np.asarray(scores), landmarks), ids


def _moved(s: _Seen, frame: int) -> np.ndarray:
    """A face's box moved on to ``frame`` at its last velocity."""
    return s.box + s.velocity * (frame - s.frame)


def _max_iou(box: np.ndarray, boxes: np.ndarray) -> float:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return float((inter / np.maximum(union, 1e-9)).max())
