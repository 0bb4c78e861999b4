"""``python -m emotion.serve`` in a child process on a free 127.0.0.1 port: for notebooks, the
tests and ``experiments/bench_serve.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Sequence

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server started with ``args`` (``emotion.serve`` options), ready when entered; stopped with
    SIGTERM on exit. Its output goes to :attr:`log_path` (a file, so a full pipe can never stall it).

    Example::

        with ServerProcess(["--no-batching"]) as server:
            httpx.post(server.url + "/predict", content=open("photo.jpg", "rb").read())
    """

    def __init__(self, args: Sequence[str] = (), start_timeout_s: float = 120.0) -> None:
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile("w+", prefix="emotion-serve-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)

    def start(self) -> "ServerProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "emotion.serve", "--port", str(self.port), *self.args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer /health within {self.start_timeout_s:g} s:\n{self.log()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait; SIGKILL after ``timeout_s``. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
