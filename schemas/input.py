"""Input records as the processors see them: one Kafka record, not yet decoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class InputRecord(Protocol):
    """One Kafka record as cxpulse's processors see it: no decoding yet.

    aiokafka's own ``ConsumerRecord`` objects are handed over as they are: copying
    each into another object cost ~5 % of a worker's CPU (py-spy).
    """

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """An :class:`InputRecord` built by hand (tests, the state-size benchmark)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
