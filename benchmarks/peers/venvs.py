"""One virtualenv per peer, created by the bench, so no peer's dependency enters cxpulse's.

Each peer's requirements are pinned (:data:`REQUIREMENTS`). Its venv lives in
``benchmarks/.venvs/<peer>`` (git-ignored) and is reused while a marker file
inside it records the same requirements; otherwise it is made afresh with the
interpreter running the bench (``python -m venv``, then ``pip install``). An
install that fails (no network, no wheel for this Python) is reported and the
peer skipped: the bench still runs everything else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENVS = Path(__file__).resolve().parents[1] / ".venvs"
ORJSON = "orjson==3.13.0"
#: peer -> its pinned requirements
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "bytewax": ("bytewax[kafka]==0.21.1", ORJSON),
    "quix": ("quixstreams==3.28.1", ORJSON),
    "faust": ("faust-streaming==0.15.3", "aiokafka==0.14.0", ORJSON),
}
_MARKER = "cxpulse-bench-requirements.txt"


@dataclass(frozen=True, slots=True)
class Venv:
    """A peer's interpreter, or why there is none."""

    python: Path | None
    error: str | None = None


def marker_text(requirements: tuple[str, ...]) -> str:
    return "\n".join(requirements) + "\n"


def ensure(peer: str, root: Path = VENVS, timeout_s: float = 900.0) -> Venv:
    """The peer's venv, made if missing or stale; never raises for a failed install."""
    requirements = REQUIREMENTS[peer]
    path = root / peer
    python = path / "bin" / "python"
    marker = path / _MARKER
    if python.exists() and marker.exists() and marker.read_text() == marker_text(requirements):
        return Venv(python)
    shutil.rmtree(path, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    steps = (
        [sys.executable, "-m", "venv", str(path)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
    )
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(path, ignore_errors=True)
            return Venv(None, f"{' '.join(cmd[:4])}…: {exc}")
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            errors = [ln for ln in lines if "ERROR" in ln] or lines
            return Venv(None, f"install of {' '.join(requirements)} failed: {errors[-1:]}")
    marker.write_text(marker_text(requirements))
    return Venv(python)
