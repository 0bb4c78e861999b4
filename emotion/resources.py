"""Where the package's shipped files are: one home for the assets folder (models, MTCNN weights, the
sample, FER+ votes), importable by every layer without pulling in anything else."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS_DIR"]

#: ``emotion/assets/``, inside the installed package as in a checkout.
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
