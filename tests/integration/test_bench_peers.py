"""``cxpulse bench --peers`` end to end, tiny, with the contenders that need no network.

The raw loop and the cxpulse worker read one answer topic on the embedded broker;
both must be timed and their counts per channel and minute verified against the
independent count. The peers' venvs need a package index, so they are left out
here (the pure parts of their handling are unit-tested).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import run_bench

pytestmark = pytest.mark.integration
#: enough that the worker cannot drain it between two of the bench's scrapes (500 ms)
EVENTS = 50_000


def test_the_raw_loop_and_the_worker_are_measured_and_verified(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    done, doc = run_bench(
        out,
        "--peers",
        "--contenders",
        "raw,cxpulse",
        "--events",
        str(EVENTS),
        "--event-time-rate",
        "28",
    )
    assert doc["verified"] and doc["skipped"] == []
    [run] = doc["densities"]
    assert run["density"] == 28.0 and run["answers"] == EVENTS
    by = {c["name"]: c for c in run["contenders"]}
    assert list(by) == ["raw", "cxpulse"]
    for name, c in by.items():
        assert c["status"] == "ok", (name, c.get("reason"))
        assert c["verification"]["passed"] and c["verification"]["answers"] == EVENTS, name
        assert c["verification"]["keys"] == run["minute_keys"] > 100, name
        assert c["events_per_s"] > 0 and c["cpu_us_per_event"] > 0, name
        assert 10 < c["peak_rss_mb"] < 2_000, name
    assert by["raw"]["ratio_to_raw"] == 1.0 and by["cxpulse"]["ratio_to_bytewax"] is None
    assert by["cxpulse"]["verification"]["window"] == "1m/1m"
    assert "cxpulse" in done.stdout and "verified against independent counts: yes" in done.stdout
