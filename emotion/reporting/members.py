"""Ensemble members that outlive a machine: a finished run's record, committed under
``experiments/members/<name>/`` (``experiments/make_member.py`` writes it).

* ``member.json``: what the member is (arch, classes, input size, protocol, the TTA its run chose on
  PublicTest), how it was made (command, resolved config, commit, device, wall time) and what it scored
  (FER2013 PublicTest and PrivateTest; agreement with the FER+ crowd on both);
* ``probs.npz``: its fp16 probabilities on every FER2013 face, per split (``train`` flip-averaged, as a
  teacher's; ``val`` and ``test`` with the run's TTA), with each split's faces fingerprint, about 1 MB;
* ``model/`` (members worth shipping): fp16 weights, loadable with ``load_model('…/model')``.

Ensemble selection reads ``val`` alone; distillation reads ``train`` alone; so an ensemble and its student
grow one member at a time, without the members' weights. PrivateTest probabilities are there for the
one read of a chosen ensemble (``experiments/ensemble_select.py --read-test-once``, which refuses a
second). The records are experiments, not part of the wheel.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotion.data.soft_labels import faces_fingerprint
from emotion.errors import EmotionError
from emotion.io import atomic_path, write_json

__all__ = ["Member", "MEMBERS_DIR", "load_member", "list_members", "write_member", "member_source"]

#: Where a checkout keeps the committed members.
MEMBERS_DIR = Path(__file__).resolve().parents[2] / "experiments" / "members"
INFO_FILE, PROBS_FILE, WEIGHTS_DIR = "member.json", "probs.npz", "model"
PREFIX = "member:"


@dataclass
class Member:
    """A committed member record."""

    name: str
    path: Path
    info: dict[str, Any]

    @property
    def weights(self) -> Path | None:
        """Its exported fp16 model folder, where the record ships one."""
        w = self.path / WEIGHTS_DIR
        return w if w.is_dir() else None

    def probs(self, split: str, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> np.ndarray:
        """Its probabilities on ``split`` (float32); with ``images`` and ``labels``, first checked to be for
        those faces, in that order.

        Raises:
            EmotionError: no such split, or the faces differ (another FER2013 form or version).
        """
        with np.load(self.path / PROBS_FILE, allow_pickle=False) as z:
            if split not in z:
                raise EmotionError(f"member {self.name!r} has no {split!r} probabilities.")
            probs, fingerprint = z[split].astype(np.float32), str(z[f"{split}_fingerprint"])
        if images is not None and labels is not None and faces_fingerprint(images, labels) != fingerprint:
            raise EmotionError(f"member {self.name!r} was recorded on other {split} faces than these (another "
                               "FER2013 form?): record it again on this data.root with experiments/make_member.py.")
        return probs


def member_source(source: str | os.PathLike) -> Path | None:
    """The folder of ``member:NAME`` or of a path holding a ``member.json``; ``None`` for anything else."""
    s = str(source)
    if s.startswith(PREFIX):
        return MEMBERS_DIR / s[len(PREFIX):]
    p = Path(s).expanduser()
    return p if (p / INFO_FILE).is_file() else None


def load_member(source: str | os.PathLike) -> Member:
    """A member by ``member:NAME`` (in :data:`MEMBERS_DIR`) or by its folder.

    Raises:
        EmotionError: no record there, or an unreadable one.
    """
    path = member_source(source) or Path(source)
    try:
        info = json.loads((path / INFO_FILE).read_text())
    except FileNotFoundError:
        known = ", ".join(m.name for m in list_members()) or "none"
        raise EmotionError(f"no member record at '{path}' (committed members: {known}).") from None
    except (OSError, json.JSONDecodeError) as e:
        raise EmotionError(f"'{path / INFO_FILE}' is unreadable ({e}).") from None
    if not (path / PROBS_FILE).is_file():
        raise EmotionError(f"member '{path}' lacks {PROBS_FILE}: record it again with experiments/make_member.py.")
    return Member(info.get("name", path.name), path, info)


def list_members(root: str | os.PathLike = MEMBERS_DIR) -> list[Member]:
    """Every member recorded under ``root``, by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [load_member(p) for p in sorted(root.iterdir()) if (p / INFO_FILE).is_file()]


def write_member(out: str | os.PathLike, info: dict[str, Any],
                 probs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Member:
    """Write a record: ``info`` as ``member.json``, and per split ``(probs, images, labels)``, the
    probabilities as fp16 with the faces' fingerprint. Nothing is left half-written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    for split, (p, images, labels) in probs.items():
        if len(p) != len(labels):
            raise ValueError(f"{split}: {len(p)} rows of probabilities for {len(labels)} faces")
        arrays[split] = np.asarray(p, dtype=np.float16)
        arrays[f"{split}_fingerprint"] = np.str_(faces_fingerprint(images, labels))
    with atomic_path(out / PROBS_FILE) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    write_json(out / INFO_FILE, {"name": out.name, **info})
    return load_member(out)
