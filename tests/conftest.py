"""pytest fixtures shared across the suite; everything else the tests share is in tests/helpers/."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import compose_cfg, quick_overrides


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A mini_xception trained for 2 epochs on the sample: the best-on-val checkpoint's path."""
    from emotion.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_cfg(out, quick_overrides("model=mini_xception", "trainer.max_epochs=2"))
    return Path(train(cfg).record["checkpoint"])


@pytest.fixture(scope="module")
def one_cpu_thread():
    """One intra-op thread for a module: MTCNN runs many small convolutions, and on a busy 2-core
    machine (CI, a training job) two threads spin against each other and run 10-20× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
