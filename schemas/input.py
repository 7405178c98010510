"""Input records as the processors see them: one Kafka record, not yet decoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: Kafka record headers: ``(name, value)`` pairs, in order, names may repeat.
Headers = Sequence[tuple[str, bytes]]


class InputRecord(Protocol):
    """One Kafka record as cxpulse's processors see it: no decoding yet.

    aiokafka's own record objects are handed over as they are (the decoded records
    themselves, not ``ConsumerRecord`` copies: ``cxpulse.agents.kafka.transport``):
    each copy cost ~5-7 % of a worker's CPU.
    """

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int | None:
        """The record's Kafka timestamp (epoch ms); kept by its dead letter."""

    @property
    def headers(self) -> Headers:
        """The record's Kafka headers; kept by its dead letter."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """An :class:`InputRecord` built by hand (tests, the state-size benchmark)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None
    headers: Headers = ()
