"""The private parts of faust-streaming and aiokafka that cxpulse bends, checked at start-up.

Every private attribute or method cxpulse uses lives in this subpackage
(:mod:`~cxpulse.agents.kafka.transport`, :mod:`~cxpulse.agents.kafka.store`,
:mod:`~cxpulse.agents.kafka.sender`), each for a measured reason given where
it is used. They were checked against the versions pinned in ``pyproject.toml``
(:data:`CHECKED`). An upgrade that renames one would otherwise fail silently
(an override never called, an attribute read as a default), so
:func:`check` runs before a worker starts and refuses to go on, naming what is
missing; the unit tests run it too.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass

#: The versions every entry of :data:`PRIVATE` was checked against.
CHECKED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


@dataclass(frozen=True, slots=True)
class Private:
    """One private attribute: ``owner`` is ``module:Class`` (or ``module``), ``why`` says why."""

    owner: str
    name: str
    why: str


_FAUST_CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
_FAUST_BASE_CONSUMER = "faust.transport.consumer:Consumer"
_FAUST_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"
_FETCHER_RECORDS = "aiokafka.consumer.fetcher:PartitionRecords"
_FETCH_RESULT = "aiokafka.consumer.fetcher:FetchResult"

PRIVATE: tuple[Private, ...] = (
    # transport.BatchingConsumer: batches acked only once processed, its own commit account
    Private(_FAUST_BASE_CONSUMER, "_new_offset", "the committable offset of a batched partition"),
    Private(_FAUST_BASE_CONSUMER, "_add_gap", "gap filling off for batched partitions"),
    Private(_FAUST_BASE_CONSUMER, "_wait_next_records", "getmany's fetch, batches kept whole"),
    Private(_FAUST_BASE_CONSUMER, "_to_message", "one Faust message per fetched batch"),
    Private(_FAUST_CONSUMER, "_new_consumer_thread", "the consumer thread with true ends"),
    Private(_FAUST_THREAD, "_highwaters", "end offsets checked by a fetch (low ListOffsets)"),
    Private(_FAUST_THREAD, "_ensure_consumer", "the aiokafka consumer behind the thread"),
    Private(_FAUST_THREAD, "_create_worker_consumer", "the worker consumer's fetch wait"),
    Private(
        "aiokafka.consumer.consumer:AIOKafkaConsumer",
        "_fetch_max_wait_ms",
        "the fetch wait its fetcher gets at start",
    ),
    # instance attributes read by BatchingConsumer, set in faust's Consumer.__init__
    Private(_FAUST_BASE_CONSUMER, "_committed_offset", "where a partition's account starts"),
    Private(_FAUST_BASE_CONSUMER, "_acked", "emptied for batched partitions (else it grows)"),
    Private(_FAUST_BASE_CONSUMER, "_acked_index", "emptied with _acked"),
    Private(_FAUST_BASE_CONSUMER, "_unacked_messages", "a skipped batch is not acked"),
    Private(_FAUST_BASE_CONSUMER, "_buffered_partitions", "which fetched partitions are active"),
    # store.partition_records: one partition of a rocksdb:// table, not the whole table
    Private("faust.stores.rocksdb:Store", "_db_for_partition", "one partition's database"),
    Private("faust.stores.rocksdb:Store", "_visible_items", "its records without standbys"),
    Private("faust.stores.base:SerializedStore", "_decode_key", "keys as Faust stores them"),
    Private("faust.stores.base:SerializedStore", "_decode_value", "values as Faust stores them"),
    # sender.app_producer: batches sent through Faust's own aiokafka producer
    Private("faust.transport.drivers.aiokafka:Producer", "_producer", "the aiokafka producer"),
    # transport.probe_true_ends: a probe consumer with the worker consumer's servers
    Private("aiokafka.consumer.consumer:AIOKafkaConsumer", "_client", "the consumer's client"),
    Private("aiokafka.client:AIOKafkaClient", "_bootstrap_servers", "its bootstrap servers"),
    # transport._init: batched topics' records handed over as aiokafka decodes them
    Private(_FETCHER_RECORDS, "_consumer_record", "the per-record copy, skipped for batches"),
    Private(_FETCHER_RECORDS, "_key_deserializer", "raw only without deserializers"),
    Private(_FETCHER_RECORDS, "_value_deserializer", "raw only without deserializers"),
    # transport.RawPartitionRecords and _getall: a raw topic's records iterated in C
    Private(_FETCHER_RECORDS, "_records_iterator", "the records' iterator, chained batches"),
    Private(_FETCHER_RECORDS, "_records", "the fetched record batches"),
    Private(_FETCHER_RECORDS, "_check_crcs", "batches' CRCs checked as aiokafka does"),
    Private(_FETCHER_RECORDS, "_isolation_level", "read_committed keeps aiokafka's path"),
    Private(_FETCHER_RECORDS, "_tp", "named in a corrupt batch's error"),
    Private(_FETCH_RESULT, "check_assignment", "records only for a partition still assigned"),
    Private(_FETCH_RESULT, "_update_position", "the consumed position after a getall"),
    Private(_FETCH_RESULT, "_partition_records", "the records a getall takes from"),
    Private(_FETCH_RESULT, "_topic_partition", "the partition a getall checks"),
)


class IncompatibleDependency(RuntimeError):
    """A dependency no longer has a private attribute cxpulse relies on."""


def _class(owner: str) -> type:
    module, _, name = owner.partition(":")
    return getattr(importlib.import_module(module), name)


def _instance_has(cls: type, name: str) -> bool:
    """Whether ``__init__`` of ``cls`` assigns ``self.<name>`` (source lookup, no instance)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            source = inspect.getsource(init)
        except (OSError, TypeError):
            continue
        if f"self.{name} =" in source or f"self.{name}:" in source:
            return True
    return False


def missing(private: tuple[Private, ...] = PRIVATE) -> list[Private]:
    """The entries of ``private`` the installed dependencies do not have."""
    gone: list[Private] = []
    for p in private:
        try:
            cls = _class(p.owner)
        except (ImportError, AttributeError):
            gone.append(p)
            continue
        # a method or class attribute, else an attribute its __init__ (or a base's) sets
        if not (hasattr(cls, p.name) or _instance_has(cls, p.name)):
            gone.append(p)
    return gone


def check() -> None:
    """Raise :class:`IncompatibleDependency` naming every private attribute that is gone."""
    gone = missing()
    if not gone:
        return
    installed = {d: _version(d) for d in CHECKED}
    names = "; ".join(f"{p.owner}.{p.name} ({p.why})" for p in gone)
    raise IncompatibleDependency(
        f"cxpulse needs private parts of its Kafka libraries that the installed versions "
        f"lack: {names}. Checked against {CHECKED}, installed {installed}: install the "
        f"checked versions (pip install -c requirements.lock .)"
    )


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
