"""A source partition feeding a merge partition in memory: the engine without Faust.

The table is a dict, the changelog a list; ``feed(..., durable_writes=k)`` models a
crash after only the first ``k`` writes of a batch reached the broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.schemas.input import RawRecord
from cxpulse.schemas.kpi import record_key
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.family import Family
from cxpulse.streams.merge import MergeState
from cxpulse.streams.watermarks import TimePolicy
from cxpulse.streams.windows import WindowSpec


class Simulation:
    """One source partition and one merge partition, with the table as a dict."""

    def __init__(
        self,
        family: Family,
        config: EngineConfig,
        windows: Sequence[WindowSpec],
        policy: TimePolicy,
        now: int,
    ) -> None:
        self.family, self.config, self.now = family, config, now
        self.table: dict[str, bytes] = {}
        self.proc = PartitionProcessor(family, config, 0, now)
        self.windows, self.policy = windows, policy
        self.merge = MergeState(0, {family.name: family}, windows, 1, policy)
        #: the merge table (its writes applied in order), for :meth:`restart_merge`
        self.merge_table: dict[str, bytes] = {}
        self.finals: dict[str, list[Any]] = {}
        self.fresh = False

    def feed(
        self,
        batch: list[RawRecord],
        *,
        durable_writes: int | None = None,
        sends_delivered: bool = True,
        merge_durable: int | None = None,
    ) -> None:
        """Process a batch and deliver its effects as the worker's agent does.

        The agent sends the batch's table writes and its snapshots and status
        together, and its commit record (the meta write) only once all of those
        were confirmed. A crash (``durable_writes``) leaves a prefix of the writes
        durable and, unless ``sends_delivered``, none of the sends; the commit record
        counts as durable only if everything before it was. ``merge_durable``: the
        merge stage crashes after publishing its finals with only that prefix of its
        watermark writes durable, and is restored from its table.
        """
        out = self.proc.process(batch, self.now, None)
        commit = [] if out.commit is None else [out.commit]
        writes = out.writes + commit
        if durable_writes is not None:  # a crash: only a prefix of the writes got out
            writes = writes[: durable_writes % (len(writes) + 1)]
            if not sends_delivered and commit:
                writes = [w for w in writes if w is not commit[0]]
        for key, value in writes:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        # as cxpulse.agents.worker.runtime does: a restored processor re-sends every bucket it holds
        # after its first batch, instead of that batch's snapshots
        snapshots = self.proc.live_snapshots() if self.fresh else out.snapshots
        self.fresh = False
        if sends_delivered:  # they may even outrun the changelog
            self._send(self.proc.offset, snapshots, merge_durable)
        if merge_durable is not None:
            self.restart_merge()

    def restart(self) -> None:
        """A new worker: the processor restored from the table; it sends on its first batch."""
        self.proc = PartitionProcessor.restore(self.family, self.config, 0, self.table, self.now)
        self.fresh = True

    def restart_merge(self) -> None:
        """A new owner of the merge partition: its state restored from the merge table."""
        self.merge = MergeState(0, {self.family.name: self.family}, self.windows, 1, self.policy)
        self.merge.restore(self.merge_table, self.now)

    def _persist(self, writes: Sequence[tuple[str, bytes | None]]) -> None:
        for key, value in writes:
            if value is None:
                self.merge_table.pop(key, None)
            else:
                self.merge_table[key] = value

    def _send(
        self, version: int, snapshots: Sequence[Any], merge_durable: int | None = None
    ) -> None:
        by_label: dict[str, list[list[Any]]] = {}
        for s in snapshots:
            by_label.setdefault(s.label, []).append([s.grid, s.start, s.counts])
        for label, entries in by_label.items():
            self.merge.apply_snapshot(self.family.name, 0, version, label, entries)
        self._persist(self.merge.bucket_writes())
        self._persist(self.merge.apply_status(self.family.name, self.proc.status()))
        finals, writes = self.merge.advance(self.now)
        if merge_durable is None:
            self._persist(writes)
        else:  # a crash of the merge stage after its finals and a prefix of its writes
            self._persist(writes[: merge_durable % (len(writes) + 1)])
        for item in finals:
            body = [item.kpi.value, item.kpi.n, item.kpi.stats]
            self.finals.setdefault(f"{record_key(item)}|{item.end_ms}", []).append(body)
