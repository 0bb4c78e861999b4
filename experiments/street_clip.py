"""A 1080p street-like clip with known faces: small faces moving under a moving camera (#33).

    python experiments/street_clip.py out.mp4 [--seconds 5] [--seed 0]

Built from what the project ships (the FER2013 sample's faces, picked as
:func:`experiments.tracking_check.pick_faces` does, over :func:`experiments.detection_check.background`
texture), so anyone can remake it:

* 1920×1080 at 25 fps; the camera pans right and bobs, so the background and every face move;
* people walk in from either edge at 1.0-1.6 m/s, bobbing as they go, and leave at the other edge; a
  face's box is taken as 0.2 m, so a 40-px face moves 8-13 px a frame and a 120-px face 24-38 (nearer
  people cross the screen faster); two stand still in the street (they move only with the camera);
* faces 40-120 px, 3-7 in view at a time;
* about a third are turned: a perspective warp that narrows the face to cos(40°) and shortens its far
  side, as a head turned 40° away looks (MTCNN's landmarks then give a yaw); not a true profile.

Every frame's ground truth (identity, box, and whether at least 60 % of the face is in view and
uncovered) is returned as a :class:`experiments.tracking_check.Scene`, so that
:func:`experiments.tracking_check.score` gives recall and ID switches against it.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.tracking_check import Scene, pick_faces, shown_enough  # noqa: E402

SIZE = (1920, 1080)
FPS = 25.0
PAN = 6.0  # camera pan, px per frame: the background and standing people drift left at this speed
TURN_DEG = 40.0


@dataclass
class Person:
    sprite: np.ndarray  # RGB, the face as pasted (resized, maybe turned)
    mask: np.ndarray  # bool, where the sprite is face
    x: float  # left edge on screen at frame t0
    y: float  # top edge on screen
    vx: float  # screen px per frame (walk speed minus the camera's pan)
    t0: int
    bob: float  # vertical bob amplitude, px

    def box(self, t: int) -> tuple[int, int, int, int]:
        x = round(self.x + self.vx * (t - self.t0))
        y = round(self.y + self.bob * math.sin(2 * math.pi * (t - self.t0) / 12))  # a stride is ~0.5 s
        h, w = self.mask.shape
        return x, y, x + w, y + h


def _sprite(face: np.ndarray, side: int, turned: bool) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    rgb = cv2.resize(np.repeat(face[..., None], 3, axis=2), (side, side), interpolation=cv2.INTER_CUBIC)
    if not turned:
        return rgb, np.ones((side, side), dtype=bool)
    w = max(1, round(side * math.cos(math.radians(TURN_DEG))))
    inset = round(side * 0.08)  # the far side looks shorter
    src = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    dst = np.float32([[0, 0], [w, inset], [w, side - inset], [0, side]])
    warp = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(rgb, warp, (w, side), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((side, side), 255, np.uint8), warp, (w, side)) > 127
    return out, mask


def cast(n_frames: int, seed: int) -> list[Person]:
    """The people of the clip: two standing, and walkers entering in turn so that 3-7 are in view."""
    rng = np.random.default_rng(seed)
    faces = pick_faces(8, seed)
    w, h = SIZE
    people = []
    for i in range(2):  # standing: in view from the start, drifting with the camera
        side = int(rng.integers(60, 121))
        sprite, mask = _sprite(faces[i], side, turned=i == 1)
        people.append(Person(sprite, mask, x=w * (0.45 + 0.35 * i), y=float(rng.uniform(200, h - 300)),
                             vx=-PAN, t0=0, bob=0.0))
    n_walkers = max(3, round(n_frames / FPS * 1.2))  # 1.2 new people a second
    starts = np.linspace(0, n_frames * 0.8, n_walkers).astype(int)
    for k, t0 in enumerate(starts):
        side = int(rng.integers(40, 121))
        sprite, mask = _sprite(faces[(k + 2) % len(faces)], side, turned=bool(rng.random() < 0.3))
        speed = float(rng.uniform(1.0, 1.6)) * side / 0.2 / FPS  # m/s × px per m / frames per s
        from_left = bool(k % 2 == 0)
        if k < 2:  # two already on screen at the first frame
            x, t0 = float(rng.uniform(100, w - 300)), 0
        else:
            x = -sprite.shape[1] + 1.0 if from_left else w - 1.0
        people.append(Person(sprite, mask, x=x, y=float(rng.uniform(150, h - 250)),
                             vx=(speed if from_left else -speed) - PAN, t0=int(t0), bob=float(rng.uniform(2, 6))))
    return people


def make_street_clip(path: Path, seconds: float = 5.0, seed: int = 0) -> Scene:
    """Write the clip to ``path`` (mp4v) and return its ground truth (``Scene.frames`` stays empty)."""
    import cv2

    from experiments.detection_check import background

    n = round(seconds * FPS)
    w, h = SIZE
    rng = np.random.default_rng(seed + 1)
    world = background(w + round(PAN * n) + 8, h + 60, rng)  # the street the camera pans along
    people = cast(n, seed)
    scene = Scene("street_1080p")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for t in range(n):
        cam_x, cam_y = round(PAN * t), round(30 + 25 * math.sin(2 * math.pi * t / (2 * FPS)))
        frame = world[cam_y:cam_y + h, cam_x:cam_x + w].copy()
        cover = np.full((h, w), -1, dtype=np.int16)
        placed = []
        for ident, p in enumerate(people):
            if t < p.t0:
                continue
            x1, y1, x2, y2 = p.box(t)
            cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if cx1 >= cx2 or cy1 >= cy2:
                continue
            sub = p.mask[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
            frame[cy1:cy2, cx1:cx2][sub] = p.sprite[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1][sub]
            cover[cy1:cy2, cx1:cx2][sub] = ident
            placed.append((ident, (x1, y1, x2, y2), int(p.mask.sum())))
        scene.truth.append([(ident, box, shown_enough(cover, ident, box, area)) for ident, box, area in placed])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return scene


def as_results(rows: list[dict]) -> list[SimpleNamespace]:
    """The rows a :class:`~emotion.inference.drivers.session.PredictSession` collects (one dict per
    frame) in the shape :func:`experiments.tracking_check.score` reads."""
    return [SimpleNamespace(faces=[SimpleNamespace(box=f["box"], track=f.get("track")) for f in r["faces"]])
            for r in rows]


def in_view(scene: Scene) -> tuple[int, int]:
    """The fewest and most faces in view (≥ 60 % shown) in a frame."""
    counts = [sum(g[2] for g in truth) for truth in scene.truth]
    return min(counts), max(counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    scene = make_street_clip(args.out, args.seconds, args.seed)
    sides = [b[2] - b[0] for truth in scene.truth for _, b, shown in truth if shown]
    lo, hi = in_view(scene)
    print(f"{args.out}: {len(scene.truth)} frames, {lo}-{hi} faces in view, face widths {min(sides)}-{max(sides)} px, "
          f"{len({g[0] for truth in scene.truth for g in truth})} people")


if __name__ == "__main__":
    main()
