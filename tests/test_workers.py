"""DataLoader workers die with the process that started them (emotion.data.workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.helpers import ROOT, SAMPLE_ROOT, survivors

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

# A parent that forks a child stuck in sleep, reports the child's pid, then waits to be killed.
FORK = textwrap.dedent("""
    import os, sys, time
    from emotion.data.workers import die_with_parent
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        if sys.argv[1] == "fixed":
            die_with_parent(parent)
        time.sleep(600)
        os._exit(0)
    print(pid, flush=True)
    time.sleep(600)
""")

# A real training loader of the sample with two prefetching workers.
LOADER = textwrap.dedent(f"""
    import os, time
    from emotion.data import FER2013DataModule
    dm = FER2013DataModule({str(SAMPLE_ROOT)!r}, cache_dir=None, batch_size=8, num_workers=2)
    dm.setup()
    it = iter(dm.train_dataloader())
    next(it)
    print(" ".join(str(p.pid) for p in it._workers), flush=True)
    time.sleep(600)
""")


def _kill_parent_and_list_survivors(code: str, *args: str, grace_s: float) -> tuple[list[int], list[int]]:
    p = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                         start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    children = [int(x) for x in p.stdout.readline().split()]
    p.kill()
    p.wait()
    left = survivors(p.pid, grace_s=grace_s)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return children, left


@pytest.mark.parametrize("variant", ["fixed", "plain"])
def test_child_dies_with_its_sigkilled_parent(variant):
    children, left = _kill_parent_and_list_survivors(FORK, variant, grace_s=2.0 if variant == "fixed" else 0.5)
    assert len(children) == 1
    # Without die_with_parent the stuck child lives on (re-parented to init): the control case.
    assert left == ([] if variant == "fixed" else children)


def test_dataloader_workers_die_with_a_sigkilled_trainer():
    # PyTorch's own watchdog would only notice after its 5 s queue timeout; the kernel acts at once.
    workers, left = _kill_parent_and_list_survivors(LOADER, grace_s=2.0)
    assert len(workers) == 2 and left == []


def test_a_sigterm_to_the_process_group_stops_training_gracefully(tmp_path):
    """timeout(1), SLURM and other schedulers signal every process of a job. The workers must leave
    that SIGTERM to the trainer: a worker killed by it would fail the run on the lost worker."""
    out, log_path = tmp_path / "run", tmp_path / "train.log"
    # vgg_slim: steps long enough that the signal lands while a batch is being computed.
    with log_path.open("w") as log_file:  # a file, not a pipe nobody reads while it trains
        p = subprocess.Popen([sys.executable, "-m", "emotion.train", "data=fer2013_sample", "model=vgg_slim",
                              "trainer=cpu", "trainer.max_epochs=50", "logger=csv", "data.num_workers=2",
                              "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
                              f"hydra.run.dir={out}"],
                             cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                  "WANDB_MODE": "offline"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "last.ckpt").exists():  # an epoch done, the next one under way
            assert p.poll() is None and time.monotonic() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    log = log_path.read_text()
    assert "killed by signal" not in log and "Traceback" not in log, log[-3000:]
    assert p.returncode == 143 and "interrupted by SIGTERM" in log and "ckpt_path=last" in log, log[-3000:]
    assert survivors(p.pid, grace_s=2.0) == []
