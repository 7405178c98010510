"""The merge stage: source buckets of every partition → windows → KPI values.

Source partitions may live on different workers, yet a KPI such as NPS for
``all`` sums every partition. Each source partition therefore sends versioned
snapshots of its buckets (replace, never add) and its event-time status to the
internal partials topic, keyed by ``family|segment``; the worker owning a
partials partition holds a :class:`MergeState` for it. Replace-by-version
makes re-sends after crashes and takeovers harmless, and because a source
sends a bucket's snapshot before any status that lets a window containing it
close, a window is final exactly when every partition's data for it is in.

*Levels* (a family with ``levels = True``, the customers): some metrics need
sums over all history before a time (active customers, MRR), not window sums.
Each series already keeps the sum of the buckets it expired (its ``base``); for
such a family that base is persisted with the expiry (``l`` records, written
before the bucket deletions, with the bound ``upto`` they cover, so a restart
between the two never counts a bucket twice), and windows get the all-history
sums before their start and their end: ``level(t) = base + buckets < t``. The
family then publishes a record for every window end, events or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cxpulse.schemas.encoding import dumps_kept
from cxpulse.streams.family import Family, Kpi
from cxpulse.streams.series import Bucket, Series
from cxpulse.streams.watermarks import PartitionStatus, TimePolicy, topic_watermark
from cxpulse.streams.windows import WindowSpec, current_window_end, ends_closed_in


# not frozen: a frozen dataclass is built through object.__setattr__ per field, 4x the
# cost, and one is built per final KPI (never changed after; docs/performance.md)
@dataclass(slots=True)
class WindowKpi:
    """One KPI value for one (window, segment, end): a KPI record without its envelope."""

    family: str
    kpi: Kpi
    window: WindowSpec
    segment: str
    end_ms: int


class MergeState:
    """Merged buckets, partition statuses and watermarks of one partials partition."""

    def __init__(
        self,
        partition: int,
        families: Mapping[str, Family],
        windows: Sequence[WindowSpec],
        source_partitions: int,
        policy: TimePolicy,
    ) -> None:
        self.partition = partition
        self.families = families
        self.windows = tuple(windows)
        self.source_partitions = source_partitions
        self.policy = policy
        self.buckets: dict[tuple[str, str], dict[int, Series]] = {}
        self.statuses: dict[str, dict[int, PartitionStatus]] = {f: {} for f in families}
        #: closed: windows ending at or before it are final
        self.wm: dict[str, int | None] = {f: None for f in families}
        #: proposed: the topic watermark by the SPEC's rule, before sources acknowledged it
        self.proposed: dict[str, int | None] = {f: None for f in families}
        #: other state of this partition's series, by key (alert baselines and states)
        self.extras: dict[str, Any] = {}
        #: buckets changed since the last :meth:`bucket_writes`: (family, label, grid, start)
        self._changed: dict[tuple[str, str, int, int], Series] = {}
        #: families whose metrics need all-history sums (see the module docstring)
        self._levels = frozenset(f for f, fam in families.items() if getattr(fam, "levels", False))
        self._span = {
            grid: max(w.size_ms for w in self.windows if w.step_ms == grid)
            for grid in {w.step_ms for w in self.windows}
        }

    # --------------------------------------------------------------- keys
    def bucket_key(self, family: str, label: str, grid: int, start: int) -> str:
        return f"{self.partition}|b|{family}|{label}|{grid}|{start}"

    def status_key(self, family: str, source: int) -> str:
        return f"{self.partition}|s|{family}|{source}"

    def level_key(self, family: str, label: str, grid: int) -> str:
        return f"{self.partition}|l|{family}|{label}|{grid}"

    def wm_key(self, family: str) -> str:
        return f"{self.partition}|w|{family}"

    def put_extra(self, key: str, value: Any) -> tuple[str, bytes | None]:
        """Keep ``value`` under ``key`` and return the table write that persists it."""
        self.extras[key] = value
        return (f"{self.partition}|x|{key}", dumps_kept(value))

    # ---------------------------------------------------------- restoring
    def restore(self, records: Mapping[str, bytes], now_wall_ms: int) -> None:
        """Load this partition's records from the merge table.

        Idle clocks restart at ``now_wall_ms``: a worker that was down must not
        take every partition for idle and let the live rule close windows early.
        """
        prefix = f"{self.partition}|"
        floors: dict[tuple[str, str, int], int] = {}  # buckets at or before are in the base
        if self._levels:
            for key, raw in records.items():
                if key.startswith(f"{prefix}l|"):
                    fam, *rest = key[len(prefix) + 2 :].split("|")
                    if fam in self._levels:
                        seg, step = "|".join(rest[:-1]), int(rest[-1])
                        upto, base = orjson.loads(raw)
                        self._grid(fam, seg, step).set_base(base)
                        floors[(fam, seg, step)] = upto
        for key, raw in records.items():
            if not key.startswith(prefix):
                continue
            kind, *parts = key[len(prefix) :].split("|")
            if kind == "l":
                continue
            value = orjson.loads(raw)
            if kind == "b":
                family, label, grid, start = parts[0], "|".join(parts[1:-2]), parts[-2], parts[-1]
                floor = floors.get((family, label, int(grid)))
                if floor is not None and int(start) <= floor:
                    continue  # expired into the base before a restart cut its deletion short
                series = self._grid(family, label, int(grid))
                fit = self.families[family].aggregate.fit
                for src, (version, counts) in value.items():
                    series.put(int(start), int(src), version, fit(counts))
            elif kind == "s" and parts[0] in self.statuses:
                p, version, max_ts, _, ack = value
                status = PartitionStatus(p, version, max_ts, now_wall_ms, ack)
                self.statuses[parts[0]][int(parts[1])] = status
            elif kind == "w" and parts[0] in self.wm:
                self.wm[parts[0]], self.proposed[parts[0]] = value
            elif kind == "x":  # state kept on behalf of the publishers (alerts)
                self.extras["|".join(parts)] = value

    def _grid(self, family: str, label: str, grid: int) -> Series:
        grids = self.buckets.setdefault((family, label), {})
        series = grids.get(grid)
        if series is None:
            series = grids[grid] = Series(self.families[family].aggregate)
        return series

    # ------------------------------------------------------------ applying
    def apply_snapshot(
        self,
        family: str,
        source: int,
        version: int,
        label: str,
        entries: Iterable[Sequence[Any]],
    ) -> None:
        """Replace source buckets unless we already hold a newer version; the table writes
        of the buckets changed come from :meth:`bucket_writes`."""
        wm = self.wm.get(family)
        fit = self.families[family].aggregate.fit  # a snapshot of a worker not yet upgraded
        changed = self._changed
        for grid, start, counts in entries:
            if wm is not None and start + self._span.get(grid, 0) <= wm:
                continue  # every window holding it is final already
            series = self._grid(family, label, grid)
            if series.put(start, source, version, fit(counts)):
                changed[(family, label, grid, start)] = series

    def bucket_writes(self) -> list[tuple[str, bytes | None]]:
        """The table write of each bucket changed since the last call: its value now.

        One per bucket, however many snapshots changed it: a merge batch carries snapshots
        of the same bucket from several source partitions. The caller writes them before
        the statuses of the same batch, so a durable status still implies durable buckets
        of every snapshot sent before it (restored, a window never closes without them).
        """
        writes: list[tuple[str, bytes | None]] = [
            (self.bucket_key(*key), _dump_bucket(series.bucket(key[3])))
            for key, series in self._changed.items()
        ]
        self._changed.clear()
        return writes

    def apply_status(self, family: str, status: PartitionStatus) -> list[tuple[str, bytes | None]]:
        held = self.statuses[family].get(status.partition)
        if held is not None and (held.version, held.last_arrival_wall_ms) > (
            status.version,
            status.last_arrival_wall_ms,
        ):
            return []
        self.statuses[family][status.partition] = status
        s = status
        value = dumps_kept([s.partition, s.version, s.max_ts, s.last_arrival_wall_ms, s.ack])
        return [(self.status_key(family, status.partition), value)]

    # ------------------------------------------------------------ windows
    def advance(self, now_wall_ms: int) -> tuple[list[WindowKpi], list[tuple[str, bytes | None]]]:
        """Move each family's watermark; return the KPIs that became final and table writes.

        The caller publishes the finals *before* writing the new watermark, so a
        crash in between re-publishes identical records rather than losing them.
        """
        finals: list[WindowKpi] = []
        writes: list[tuple[str, bytes | None]] = []
        for family in self.families:
            old = self.wm[family]
            statuses = self.statuses[family]
            proposed = topic_watermark(
                statuses.values(),
                self.source_partitions,
                self.policy,
                now_wall_ms,
                self.proposed[family],
            )
            self.proposed[family] = proposed
            new = _closed(proposed, statuses.values(), self.source_partitions, old)
            if new is None or new == old:
                continue
            finals.extend(self._finals(family, old, new))
            self.wm[family] = new
            # The watermark first: a durable bucket deletion must imply a durable watermark,
            # or a restart would re-close windows without the deleted buckets.
            writes.append((self.wm_key(family), dumps_kept([new, proposed])))
            writes.extend(self._expire(family, new))
        return finals, writes

    def display_watermark(self, family: str) -> int | None:
        """The topic watermark, or before there is one the most advanced partition's."""
        wm = self.wm[family]
        if wm is not None:
            return wm
        marks = [s.watermark(self.policy) for s in self.statuses[family].values()]
        return max((m for m in marks if m is not None), default=None)

    def current(self, family: str) -> list[WindowKpi]:
        """Provisional KPIs of the open window containing the watermark, per window and segment."""
        wm = self.display_watermark(family)
        if wm is None:
            return []
        out: list[WindowKpi] = []
        for (fam, label), grids in self.buckets.items():
            if fam != family:
                continue
            for spec in self.windows:
                series = grids.get(spec.step_ms)
                if series is None:
                    continue
                end = current_window_end(wm, spec)
                if family in self._levels:
                    out.extend(self._level_kpis(family, label, spec, series, [end]))
                    continue
                total = series.window(end - spec.size_ms, end, keep=False)
                if total is not None:
                    out.extend(self._kpis(family, label, spec, {end: total}))
        return out

    def _finals(self, family: str, old: int | None, new: int) -> list[WindowKpi]:
        out: list[WindowKpi] = []
        for (fam, label), grids in self.buckets.items():
            if fam != family:
                continue
            for spec in self.windows:
                series = grids.get(spec.step_ms)
                if series is None:
                    continue
                if family in self._levels:
                    ends = _every_end(series, spec, old, new)
                    out.extend(self._level_kpis(family, label, spec, series, ends))
                    continue
                totals: dict[int, list[Any]] = {}
                for end in ends_closed_in(series.starts, spec, old, new):
                    total = series.window(end - spec.size_ms, end)
                    if total is not None:
                        totals[end] = total
                out.extend(self._kpis(family, label, spec, totals))
        return out

    def _kpis(
        self, family: str, label: str, spec: WindowSpec, totals: Mapping[int, list[Any]]
    ) -> list[WindowKpi]:
        kpis = self.families[family].kpis
        return [
            WindowKpi(family, kpi, spec, label, end)
            for end, counts in totals.items()
            for kpi in kpis(counts)
        ]

    def _level_kpis(
        self, family: str, label: str, spec: WindowSpec, series: Series, ends: Iterable[int]
    ) -> list[WindowKpi]:
        """KPIs from the all-history sums before each window's start and end."""
        window_kpis = self.families[family].window_kpis  # type: ignore[attr-defined]
        out: list[WindowKpi] = []
        for end in ends:
            before, after = series.level(end - spec.size_ms), series.level(end)
            for kpi in window_kpis(before, after, spec.size_ms):
                out.append(WindowKpi(family, kpi, spec, label, end))
        return out

    def _expire(self, family: str, wm: int) -> list[tuple[str, bytes | None]]:
        writes: list[tuple[str, bytes | None]] = []
        levels = family in self._levels
        for (fam, label), grids in self.buckets.items():
            if fam != family:
                continue
            for grid, series in grids.items():
                upto = wm - self._span.get(grid, 0)
                gone = series.expire(upto)
                if levels and gone:  # the base first: see the module docstring
                    base = dumps_kept([upto, series.base])
                    writes.append((self.level_key(family, label, grid), base))
                for start in gone:
                    writes.append((self.bucket_key(family, label, grid, start), None))
        return writes


def _every_end(series: Series, spec: WindowSpec, old: int | None, new: int) -> range:
    """Every window end ``E`` with ``old < E <= new`` from the series' first data on.

    Before any watermark the first end is the one after the oldest bucket; a series
    with a base (expired buckets) always has an ``old`` watermark.
    """
    step = spec.step_ms
    if old is not None:
        first = old - old % step + step
    elif len(series):
        first = next(iter(series)) + step
    else:
        return range(0)
    return range(first, new - new % step + 1, step)


def _closed(
    proposed: int | None,
    statuses: Iterable[PartitionStatus],
    partitions: int,
    previous: int | None,
) -> int | None:
    """Windows close at the proposed watermark once every source acknowledged it.

    A source acknowledges a watermark after making every time-driven decision up to
    it (abandonments, SLA breaches) and sending the resulting snapshots, so a window
    never closes before those decisions are in it. With all partitions active the
    acknowledgements are the partition watermarks and change nothing.
    """
    if proposed is None:
        return previous
    acks = [s.ack for s in statuses]
    if len(acks) < partitions or any(a is None for a in acks):
        return previous
    closed = min(proposed, *(a for a in acks if a is not None))
    return closed if previous is None else max(previous, closed)


def _dump_bucket(bucket: Bucket) -> bytes:
    return dumps_kept({str(src): [v, c] for src, (v, c) in bucket.items()})
