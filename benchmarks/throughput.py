"""Sustained events/s and CPU µs/event of a group of workers draining a backlog.

The backlog is produced before the workers start, so they fetch full batches
from the first poll, as the ceiling does. (Producing while they run would make
them process many small batches, whose per-batch costs — a flush, the partials,
the merge — make them look 2-3 times slower: that measures the producer's
pacing, not the worker.) Workers of one configuration start
together: the embedded broker waits 3 s before it completes a join, so they
land in the same group generation and share the partitions from the start.

The measured window opens at the first scrape where every worker has counted
something (``cx_events_total``, all outcomes) and closes when their sum reaches
the backlog's size. Scrapes come every 500 ms while the end is far, then, once
the rate so far puts it within two intervals, every 20 ms (:func:`next_poll_s`):
the count stops at the backlog's size, so the end is the first scrape that sees
it, and with 500 ms scrapes throughout that was up to half a second late on a
drain of ~1.5 s. A scrape asks for ``cx_events_total`` only, so the few fine
ones cost the workers little. Events/s = events counted in the window / its length; CPU µs/event
= the workers' CPU time (``/proc``) over the window / those events. If a worker
only started counting more than a second after the first one (it joined late),
or never did, the run is marked ``staggered_start``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.workers import Worker, proc_cpu_s, total

MIN_LEFT = 0.25
#: scrape interval once the end is near (:func:`next_poll_s`)
FINE_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class Sample:
    """Events counted by all workers at time ``t`` (perf counter, s), and their CPU s then."""

    t: float
    events: float
    cpu_s: float


def _counts(worker: Worker) -> float | None:
    """Events a worker counted so far, ``None`` while its web server is not up yet."""
    try:
        return total([worker.counts()])
    except OSError:
        return None


def sample(workers: list[Worker]) -> tuple[Sample, list[float | None]]:
    """Scrape every worker; the time is the middle of the scrapes."""
    before = time.perf_counter()
    per_worker = [_counts(w) for w in workers]
    after = time.perf_counter()
    cpu = sum(proc_cpu_s(w.pid) for w in workers)
    return Sample((before + after) / 2, sum(c or 0.0 for c in per_worker), cpu), per_worker


def crossing(before: Sample, after: Sample, n: float) -> float:
    """When the count reached ``n``, by linear interpolation between two samples."""
    if after.events <= before.events:
        return after.t
    share = (n - before.events) / (after.events - before.events)
    return before.t + (after.t - before.t) * min(max(share, 0.0), 1.0)


def next_poll_s(start: Sample, last: Sample, n: float, poll_s: float) -> float:
    """How long to wait before the next scrape: ``poll_s``, or less as the end nears.

    The end is estimated from the rate since ``start``; within two intervals of it
    the wait shrinks to half the estimate, down to :data:`FINE_POLL_S`.
    """
    done, elapsed = last.events - start.events, last.t - start.t
    if done <= 0 or elapsed <= 0:
        return poll_s
    eta = (n - last.events) / (done / elapsed)
    return poll_s if eta > 2 * poll_s else max(FINE_POLL_S, min(poll_s, eta / 2))


def drain_figures(start: Sample, before: Sample, after: Sample, n: float) -> dict[str, float]:
    """Events/s from ``start`` until ``n`` events; CPU µs per event over the same samples."""
    end_t = crossing(before, after, n)
    events = n - start.events
    cpu_events = after.events - start.events
    return {
        "events_per_s": events / (end_t - start.t) if end_t > start.t else float("nan"),
        "cpu_us_per_event": (after.cpu_s - start.cpu_s) / cpu_events * 1e6
        if cpu_events > 0
        else float("nan"),
        "measured_events": events,
        "measured_s": end_t - start.t,
    }


def measure(
    workers: list[Worker],
    n: int,
    *,
    poll_s: float = 0.5,
    start_poll_s: float = 0.1,
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Time the drain of a backlog of ``n`` events by freshly started ``workers``."""
    deadline = time.monotonic() + timeout_s
    first: Sample | None = None

    def check() -> None:
        dead = [w for w in workers if not w.alive()]
        if dead or time.monotonic() > deadline:
            tail = dead[0].log_tail() if dead else ""
            raise RuntimeError(f"workers did not drain {n} events in time\n{tail}")

    while True:  # the window opens when every worker has counted something
        check()
        now, per_worker = sample(workers)
        if first is None and now.events > 0:
            first = now
        if all(c for c in per_worker) or now.events >= n:
            break
        time.sleep(start_poll_s)
    assert first is not None
    start = now if now.events < n else first
    staggered = start is not now or now.t - first.t > 1.0
    before = after = start
    while after.events < n:
        check()
        time.sleep(next_poll_s(start, after, n, poll_s))
        before, (after, _) = after, sample(workers)
    figures = drain_figures(start, before, after, n)
    figures["staggered_start"] = staggered
    return figures
