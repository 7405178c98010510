"""The worker's in-process state, between Faust (tables, topics) and the pure engine.

:class:`Runtime` owns, for the partitions this worker is assigned, the source
:class:`~cxpulse.streams.engine.PartitionProcessor` objects and the
:class:`~cxpulse.streams.merge.MergeState` objects, plus the latest records behind the
gauges. It has no Faust import: the agents in :mod:`cxpulse.agents.worker.pipeline` hand it
record batches and carry out what it returns (sends, table writes), which keeps
all of this testable without a broker.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from cxpulse.agents.publish.alerts import AlertState, evaluate
from cxpulse.schemas import partials
from cxpulse.schemas.alerts import alert_key, alert_record
from cxpulse.schemas.input import Headers, InputRecord
from cxpulse.schemas.kpi import encode, final_records, kpi_record, record_key
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.cart.family import CartFamily
from cxpulse.streams.families.customer.family import CustomerFamily
from cxpulse.streams.families.survey.family import SurveyFamily
from cxpulse.streams.families.ticket.business_time import BusinessCalendar
from cxpulse.streams.families.ticket.family import TicketFamily
from cxpulse.streams.family import Family
from cxpulse.streams.merge import MergeState, WindowKpi
from cxpulse.streams.settings import AlertRule, Settings
from cxpulse.streams.watermarks import PartitionStatus, TimePolicy

Write = tuple[str, bytes | None]
#: topic, key, value, partition; or also timestamp (ms) and headers (a dead letter's)
Send = (
    tuple[str, bytes | None, bytes, int | None]
    | tuple[str, bytes | None, bytes, int | None, int | None, Headers]
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def build_families(settings: Settings) -> dict[str, Family]:
    """The metric families this worker runs, by name (the name is also the topic role)."""
    hours = settings.tickets.business_hours
    return {
        "survey": SurveyFamily(settings.time.dedup_horizon_ms),
        "cart": CartFamily(settings.carts.abandon_after_ms, settings.carts.recovery_window_ms),
        "ticket": TicketFamily(
            settings.tickets.sla_ms,
            None if hours is None else BusinessCalendar(hours),
            settings.time.dedup_horizon_ms,
            settings.tickets.forget_after_ms,
        ),
        "customer": CustomerFamily(settings.customers.gross_margin),
    }


@dataclass(slots=True)
class SourceResult:
    """What the agent must do after a source batch, in this order."""

    sends: list[Send] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    #: the meta write: only once the writes and sends above are acknowledged
    commit: Write | None = None


@dataclass(slots=True)
class MergeResult:
    finals: list[Send] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    wm_writes: list[Write] = field(default_factory=list)


_WINDOW_SIZE = attrgetter("window.size_ms")
_END = attrgetter("end_ms")


def in_publishing_order(finals: list[WindowKpi]) -> list[WindowKpi]:
    """``finals`` sorted in place by end and, at one end, longer windows first (the order
    :meth:`Runtime._alerts` needs), ties as they came: two stable sorts by C keys, not
    one by a key tuple built per final."""
    finals.sort(key=_WINDOW_SIZE, reverse=True)
    finals.sort(key=_END)
    return finals


class Runtime:
    """Processors and merge states of one worker (see the module docstring)."""

    def __init__(self, settings: Settings, partials_topic: str) -> None:
        self.settings = settings
        self.partials_topic = partials_topic
        self.families = build_families(settings)
        t = settings.time
        self.policy = TimePolicy(t.allowed_lateness_ms, t.idle_timeout_ms, t.max_clock_skew_ms)
        self.grids = tuple(sorted({w.step_ms for w in settings.windows}))
        self.partitions = settings.topics.partitions
        self.topic_of = {name: getattr(settings.topics, name) for name in self.families}
        self.family_of_topic = {topic: name for name, topic in self.topic_of.items()}
        #: the alert rules of each metric, in the configured order: most final records
        #: have none, and the merge stage looks them up once per final record
        self.rules_of: dict[str, tuple[AlertRule, ...]] = {}
        for rule in settings.alerts:
            self.rules_of[rule.metric] = (*self.rules_of.get(rule.metric, ()), rule)
        self.processors: dict[tuple[str, int], PartitionProcessor] = {}
        #: processors restored ahead of their first batch, which still owes the merge
        #: stage their live buckets and status (see :meth:`restore_sources`)
        self.unannounced: set[tuple[str, int]] = set()
        self.merges: dict[int, MergeState] = {}
        #: latest provisional record per "metric|window|segment", per partials partition
        self.latest: dict[int, dict[str, dict[str, Any]]] = {}
        #: latest final record per "metric|window|segment", per partials partition
        self.finals: dict[int, dict[str, dict[str, Any]]] = {}
        self.topic_watermarks: dict[str, int | None] = {name: None for name in self.families}

    # ------------------------------------------------------------ sources
    def engine_config(self, family: str) -> EngineConfig:
        s = self.settings
        return EngineConfig(
            topic=self.topic_of[family],
            grids=self.grids,
            policy=self.policy,
            dedup_horizon_ms=s.time.dedup_horizon_ms,
            dimensions=s.segments.dimensions,
            max_segment_values=s.segments.max_segment_values,
        )

    def processor(
        self, family: str, partition: int, table: Mapping[str, bytes]
    ) -> tuple[PartitionProcessor, bool]:
        """The processor for a source partition, restored from its table on first use.

        ``True`` with it while its restored state is still to be announced to the
        merge stage (live buckets and status), i.e. at its first batch.
        """
        key = (family, partition)
        proc = self.processors.get(key)
        if proc is not None:
            if key in self.unannounced:
                self.unannounced.discard(key)
                return proc, True
            return proc, False
        proc = PartitionProcessor.restore(
            self.families[family], self.engine_config(family), partition, table, now_ms()
        )
        self.processors[key] = proc
        return proc, True

    def restore_sources(self, assigned: Mapping[tuple[str, int], Mapping[str, bytes]]) -> None:
        """Own exactly the ``assigned`` source partitions (their tables recovered): restore
        the missing ones now, drop any other.

        A processor restored only when its partition's next batch arrives would export
        no open gauges until then, and at the end of a stream none arrives: after a
        restart or a takeover the worker's ``cx_carts_open``/``cx_tickets_open`` would
        leave those partitions out. Restored here, they count as soon as the
        rebalance is over; each still announces itself at its first batch. A processor
        of a partition not assigned (one that a batch handled during a revocation
        could make) would export another worker's counts too: it goes.
        """
        for key in [k for k in self.processors if k not in assigned]:
            self.drop_source(*key)
        for key, table in assigned.items():
            if key not in self.processors:
                self.processor(key[0], key[1], table)
                self.unannounced.add(key)

    def process_source(
        self,
        family: str,
        partition: int,
        records: list[InputRecord],
        table: Mapping[str, bytes],
        *,
        tick: bool = False,
    ) -> SourceResult:
        """Apply a batch (or, for a ``tick``, just the passing of time) to a source partition.

        A tick always reports the partition's status, so the merge stage hears from
        idle partitions too (and from ones that never had a record).
        """
        proc, fresh = self.processor(family, partition, table)
        out = proc.process(records, now_ms(), self.topic_watermarks.get(family))
        result = SourceResult(outcomes=out.outcomes, writes=out.writes, commit=out.commit)
        dl = self.settings.topics.deadletter
        result.sends.extend(
            (dl, d.key, d.value, None, d.timestamp_ms, d.headers) for d in out.dead_letters
        )
        snapshots = proc.live_snapshots() if fresh else out.snapshots
        version = proc.offset
        result.sends.extend(self._snapshot_sends(family, partition, version, snapshots))
        if out.commit is not None or fresh or tick:
            result.sends.extend(self.status_sends(family, proc.status()))
        return result

    def _snapshot_sends(
        self, family: str, partition: int, version: int, snapshots: list[Any]
    ) -> Iterator[Send]:
        by_label: dict[str, list[list[Any]]] = {}
        for snap in snapshots:
            by_label.setdefault(snap.label, []).append([snap.grid, snap.start, snap.counts])
        for label, entries in by_label.items():
            key = partials.buckets_key(family, label)
            value = partials.encode_buckets(family, partition, version, label, entries)
            yield self.partials_topic, key, value, zlib.crc32(key) % self.partitions

    def status_sends(self, family: str, status: PartitionStatus) -> Iterator[Send]:
        """A status goes to every partials partition: each merges all source partitions."""
        value = partials.encode_status(
            partials.Status(
                family,
                status.partition,
                status.version,
                status.max_ts,
                status.last_arrival_wall_ms,
                status.ack,
            )
        )
        for j in range(self.partitions):
            yield self.partials_topic, None, value, j

    def restored_statuses(self) -> Iterator[Send]:
        for (family, _), proc in sorted(self.processors.items()):
            yield from self.status_sends(family, proc.status())

    def drop_source(self, family: str, partition: int) -> None:
        self.processors.pop((family, partition), None)
        self.unannounced.discard((family, partition))

    # -------------------------------------------------------------- merge
    def merge_state(self, partition: int, table: Mapping[str, bytes]) -> MergeState:
        state = self.merges.get(partition)
        if state is None:
            state = MergeState(
                partition,
                self.families,
                self.settings.windows,
                self.partitions,
                self.policy,
            )
            state.restore(table, now_ms())
            self.merges[partition] = state
        return state

    def restore_merge(self, partition: int, table: Mapping[str, bytes]) -> None:
        """Restore a merge partition now, with its gauges: after a takeover, the new
        owner exports its series as soon as the rebalance is over."""
        if partition not in self.merges:
            self._open_records(partition, self.merge_state(partition, table), now_ms())

    def process_merge(
        self, partition: int, records: list[InputRecord], table: Mapping[str, bytes]
    ) -> MergeResult:
        taken_over = partition not in self.merges
        state = self.merge_state(partition, table)
        result = MergeResult()
        #: the batch's status writes, the last per key, written after its buckets'
        #: (MergeState.bucket_writes)
        statuses: dict[str, bytes | None] = {}
        for rec in records:
            if rec.value is None:
                continue
            msg = partials.decode(rec.value)
            family = msg.family
            if family not in self.families:
                continue
            if isinstance(msg, partials.Buckets):
                state.apply_snapshot(family, msg.partition, msg.version, msg.segment, msg.buckets)
            else:
                status = PartitionStatus(
                    msg.partition, msg.version, msg.max_ts, msg.last_arrival_wall_ms, msg.ack
                )
                statuses.update(state.apply_status(family, status))
        result.writes.extend(state.bucket_writes())
        result.writes.extend(statuses.items())
        self.advance(state, result)
        if taken_over:
            # export this partition's series now, not at the next emission: after a
            # rebalance the survivors export everything within one emit interval
            self._open_records(partition, state, now_ms())
        return result

    def advance(self, state: MergeState, result: MergeResult) -> None:
        now = now_ms()
        finals, writes = state.advance(now)
        result.wm_writes.extend(writes)
        kpi_topic = self.settings.topics.kpi
        alert_writes: list[Write] = []
        latest = self.finals.setdefault(state.partition, {})
        rules_of = self.rules_of
        sends = result.finals
        for key, record in final_records(in_publishing_order(finals), state.wm, now):
            latest[key] = record
            sends.append((kpi_topic, key.encode(), encode(record), None))
            rules = rules_of.get(record["metric"])
            if rules:
                alert_writes.extend(self._alerts(state, rules, record, now, sends))
        # alert state before the watermark: a durable watermark implies durable alert state
        result.wm_writes[:0] = alert_writes
        for family, wm in state.proposed.items():
            known = self.topic_watermarks.get(family)
            if wm is not None and (known is None or wm > known):
                self.topic_watermarks[family] = wm

    def _alerts(
        self,
        state: MergeState,
        rules: Sequence[AlertRule],
        record: dict[str, Any],
        now: int,
        sends: list[Send],
    ) -> list[Write]:
        """Keep baselines; evaluate rules on short windows; send transitions (SPEC §4.3).

        Finals arrive sorted by end and, at one end, longer windows first, so the
        baseline used is the latest final one at or before the short window's end.
        """
        writes: list[Write] = []
        metric, window, segment = record["metric"], record["window"], record["segment"]
        for rule in rules:  # the rules of this record's metric (``rules_of``)
            if rule.baseline.name == window:
                writes.append(state.put_extra(f"b|{metric}|{window}|{segment}", record))
            if rule.window.name != window:
                continue
            baseline = state.extras.get(f"b|{metric}|{rule.baseline.name}|{segment}")
            outcome = evaluate(rule, record, baseline)
            held = state.extras.get(f"a|{rule.name}|{segment}") or [False, 0]
            alert = AlertState(held[0], held[1])
            transition = alert.step(outcome.condition)
            if [alert.firing, alert.false_streak] != held:
                writes.append(
                    state.put_extra(f"a|{rule.name}|{segment}", [alert.firing, alert.false_streak])
                )
            if transition is not None:
                body = alert_record(
                    alert=rule.name,
                    metric=metric,
                    segment=segment,
                    state=transition,
                    current=outcome.current,
                    baseline=outcome.baseline,
                    delta=outcome.delta,
                    z=outcome.z,
                    n=outcome.n,
                    window=window,
                    baseline_window=rule.baseline.name,
                    at=record["window_end"],
                    emitted_at_ms=now,
                )
                key = alert_key(rule.name, segment)
                sends.append((self.settings.topics.alerts, key, encode(body), None))
        return writes

    def firing(self) -> Iterator[tuple[str, str, bool]]:
        """``(alert, segment, firing)`` for every alert series this worker owns."""
        for state in list(self.merges.values()):
            for key, value in list(state.extras.items()):
                if key.startswith("a|"):
                    _, rule, segment = key.split("|", 2)
                    yield rule, segment, bool(value[0])

    def provisional(self) -> list[Send]:
        """Records of the open windows of every owned merge partition; refreshes the gauges."""
        now = now_ms()
        kpi_topic = self.settings.topics.kpi
        sends: list[Send] = []
        for j, state in self.merges.items():
            for key, record in self._open_records(j, state, now).items():
                sends.append((kpi_topic, key.encode(), encode(record), None))
        return sends

    def _open_records(self, j: int, state: MergeState, now: int) -> dict[str, dict[str, Any]]:
        """The provisional records of merge partition ``j``, kept as its gauges' source."""
        latest: dict[str, dict[str, Any]] = {}
        for family in self.families:
            wm = state.display_watermark(family)
            items: list[WindowKpi] = state.current(family)
            for item in items:
                latest[record_key(item)] = kpi_record(
                    item, final=False, watermark_ms=wm, now_ms=now
                )
        self.latest[j] = latest
        return latest

    def drop_merge(self, partition: int) -> None:
        self.merges.pop(partition, None)
        self.latest.pop(partition, None)
        self.finals.pop(partition, None)

    def latest_finals(self) -> list[dict[str, Any]]:
        return [r for records in list(self.finals.values()) for r in records.values()]

    def latest_records(self) -> Iterator[dict[str, Any]]:
        for records in list(self.latest.values()):
            yield from records.values()

    def state_entries(self) -> dict[tuple[str, str], int]:
        """How much state this worker holds, to show it stays bounded on a long run."""
        out: dict[tuple[str, str], int] = {}
        for (family, _), proc in list(self.processors.items()):
            topic = self.topic_of[family]
            for kind, count in (
                ("entities", len(proc.entities)),
                ("buckets", len(proc.buckets)),
                ("dedup_ids", len(proc.dedup)),
            ):
                out[(topic, kind)] = out.get((topic, kind), 0) + count
        merged = sum(
            len(starts)
            for state in list(self.merges.values())
            for grids in state.buckets.values()
            for starts in grids.values()
        )
        out[("merge", "buckets")] = merged
        return out

    def open_gauges(self) -> dict[str, dict[str, int]]:
        """``{"cx_carts_open": {"all": 3, "web": 2}}`` over the partitions this worker owns."""
        out: dict[str, dict[str, int]] = {}
        for proc in list(self.processors.values()):
            for (name, label), count in proc.gauges.items():
                channel = label.partition("=")[2] if "=" in label else label
                if label != "all" and not label.startswith("channel="):
                    continue
                by = out.setdefault(name, {})
                by[channel] = by.get(channel, 0) + count
        return out

    def merge_watermarks(self) -> dict[str, dict[str, Any]]:
        """Per owned merge partition and family: why its windows are (not) closing.

        ``closed`` is where windows are final, ``proposed`` the topic watermark by
        the SPEC's rule, ``acks`` what each source partition has decided up to
        (windows close at the minimum of ``proposed`` and every ack).
        """
        out: dict[str, dict[str, Any]] = {}
        for j, state in sorted(self.merges.items()):
            out[str(j)] = {
                family: {
                    "closed": state.wm[family],
                    "proposed": state.proposed[family],
                    "acks": {str(p): s.ack for p, s in sorted(state.statuses[family].items())},
                }
                for family in self.families
            }
        return out

    def watermark_seconds(self) -> Mapping[str, float]:
        return {
            self.topic_of[f]: wm / 1000.0
            for f, wm in self.topic_watermarks.items()
            if wm is not None
        }


RuntimeFactory = Callable[[Settings, str], Runtime]
