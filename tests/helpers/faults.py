"""Run ``python -m emotion.train`` with a fault injected, the command line left as the user typed it.

    python tests/helpers/faults.py WHERE AT SIGNAL -- [train overrides]

WHERE is ``train`` (AT: a global step, before that batch), ``val`` (AT: an epoch, at its first
validation batch), ``test`` (the PrivateTest pass after training; AT is ignored) or ``trial``
(AT: which training run of a multirun, from 0, at its first batch: the sweep dies with it); SIGNAL is
SIGKILL, SIGTERM or SIGINT, sent by the process to itself. The callback is added by wrapping
``Trainer.__init__``, so the overrides, and so the command that ``ckpt_path=last`` later matches,
are the same as in a run without the fault.
"""

from __future__ import annotations

import os
import signal
import sys

import pytorch_lightning as pl


class KillAt(pl.Callback):
    def __init__(self, where: str, at: int, sig: str) -> None:
        self.where, self.at, self.sig = where, at, getattr(signal, sig)
        self.trainers = 0  # Trainers built so far in this process (one per run of a multirun)

    def _kill(self) -> None:
        os.kill(os.getpid(), self.sig)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.where == "train" and trainer.global_step == self.at:
            self._kill()
        if self.where == "trial" and self.trainers == self.at + 1:
            self._kill()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if (self.where == "val" and not trainer.sanity_checking and trainer.current_epoch == self.at
                and batch_idx == 0):
            self._kill()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.where == "test":
            self._kill()


def main() -> None:
    where, at, sig, sep, *overrides = sys.argv[1:]
    # A shell that starts a job in the background makes it ignore SIGINT, and Python keeps that; a
    # Ctrl-C in a terminal reaches a process that has Python's default handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    assert sep == "--", __doc__
    fault = KillAt(where, int(at), sig)
    init = pl.Trainer.__init__

    def with_fault(self, *args, callbacks=None, **kwargs):
        fault.trainers += 1
        init(self, *args, callbacks=[*(callbacks or []), fault], **kwargs)

    pl.Trainer.__init__ = with_fault
    sys.argv = [sys.argv[0], *overrides]
    from emotion.train import main as train_main

    train_main()


if __name__ == "__main__":
    main()
