"""DataLoader workers that die with the process that started them.

A worker is a forked child. When its parent is SIGKILLed (by a scheduler, the OOM killer, a user),
nothing tells the worker: it is re-parented to init and may live on forever, holding memory and
any pipe it inherited (a calling test's stdout). On Linux the kernel can send it a signal instead
(``PR_SET_PDEATHSIG``); elsewhere this is a no-op and PyTorch's own watchdog, which only notices a
dead parent between batches, is all there is.

Where the kernel holds that promise, a worker also ignores SIGTERM. A scheduler's or ``timeout``'s
SIGTERM often goes to the whole process group; a worker that died of it first would make its
parent fail on the lost worker ("DataLoader worker … is killed by signal: Terminated") instead of
stopping gracefully. The worker still ends: with its parent, or when the loader shuts it down.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["die_with_parent", "worker_init"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel SIGKILL this process when ``parent_pid`` (its parent) ends; ``False`` where it can't."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False  # not permitted here (an unusual sandbox): keep PyTorch's watchdog only
    # The parent may have died before the prctl call, when the signal could no longer be sent.
    if os.getppid() != parent_pid:
        os._exit(1)
    return True


def worker_init(worker_id: int, parent_pid: int) -> None:
    """``worker_init_fn`` for every DataLoader of a run (bind ``parent_pid`` with functools.partial).

    Also seeds the worker as Lightning would have (``seed_everything(workers=True)``): Lightning
    adds its own ``worker_init_fn`` only to loaders that have none.
    """
    if die_with_parent(parent_pid):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent's to handle (see the module's doc)
    if os.environ.get("PL_SEED_WORKERS") == "1":
        from lightning_fabric.utilities.seed import pl_worker_init_function

        pl_worker_init_function(worker_id)
