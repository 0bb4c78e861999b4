"""How a model's answers agree with what people say: FER2013 models scored against the FER+ crowd.

FER2013's labels are one annotator's; FER+ asked ten (:mod:`emotion.data.sources.ferplus`). A model that
answers "what would people say this face shows?" is judged against their plurality, over the 7
FER2013 classes, on the faces where that plurality is one of them.
"""

from __future__ import annotations

import numpy as np

from emotion.data.classes import CLASS_NAMES
from emotion.data.sources.ferplus import plurality_labels

__all__ = ["crowd_agreement", "SAD", "NEUTRAL"]

SAD, NEUTRAL = CLASS_NAMES.index("sad"), CLASS_NAMES.index("neutral")


def crowd_agreement(probs: np.ndarray, votes: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Scores of ``probs`` (faces × classes, class ids as FER2013's; an 8th, contempt, counts as a wrong
    answer on these faces) against the FER+ ``votes`` of the same faces.

    Returns:
        ``faces`` (with a 7-class plurality), ``acc`` (agreement with it), ``macro_recall`` (mean of
        ``recall`` over the 7 classes), ``recall`` per class, ``neutral_recall``, ``sad_false_alarms``
        (the share of these faces that the model calls sad while the crowd says otherwise), and with ``labels``
        (the FER2013 labels) ``fer2013_acc`` on all faces.
    """
    target = plurality_labels(votes)
    ok = target >= 0
    pred = np.asarray(probs).argmax(1)
    p, t = pred[ok], target[ok]
    recall = {name: float((p[t == c] == c).mean()) if (t == c).any() else float("nan")
              for c, name in enumerate(CLASS_NAMES)}
    out = {
        "faces": int(ok.sum()),
        "acc": float((p == t).mean()),
        "macro_recall": float(np.nanmean(list(recall.values()))),
        "recall": recall,
        "neutral_recall": recall["neutral"],
        "sad_false_alarms": float(((p == SAD) & (t != SAD)).mean()),
    }
    if labels is not None:
        out["fer2013_acc"] = float((pred == np.asarray(labels)).mean())
    return out
