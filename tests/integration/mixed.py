"""All three input topics at once, on any number of partitions, with the oracle's finals.

The datasets of the three pipeline tests (duplicates, invalid, late and
out-of-order records, heartbeats) side by side, for the scale-out and crash tests
that must show the whole pipeline, every family and the merge stage together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.integration import test_cart_pipeline as cart
from tests.integration import test_survey_pipeline as survey
from tests.integration import test_ticket_pipeline as ticket
from tests.integration.harness import produce
from tests.oracle import Produced

#: settings of the worker and the oracle: two windows (fewer finals to wait for),
#: business hours for the ticket metrics; everything else SPEC defaults
MIXED_ENV = ticket.BUSINESS_ENV

Encoded = tuple[int, bytes | None, bytes]
Encoder = Callable[[Produced], Encoded]


@dataclass(frozen=True)
class MixedDataset:
    """Encoded records per topic env key (``CXPULSE_TOPICS_SURVEY`` …) and the finals."""

    records: dict[str, list[Encoded]]
    closing: dict[str, list[Encoded]]
    expected: dict[tuple[str, str, str, str], Any]

    def parts(self, k: int) -> Iterator[dict[str, list[Encoded]]]:
        """The records in ``k`` consecutive parts, each a slice of every topic."""
        for i in range(k):
            yield {
                topic: records[len(records) * i // k : len(records) * (i + 1) // k]
                for topic, records in self.records.items()
            }

    def __len__(self) -> int:
        return sum(len(r) for r in self.records.values())


def mixed_dataset(seed: int, partitions: int, scale: float = 1.0) -> MixedDataset:
    """Survey, cart and ticket traffic over ``partitions`` partitions each."""
    surveys = survey.build_dataset(seed, int(700 * scale), partitions)
    carts = cart.build_dataset(seed, int(300 * scale), partitions)
    tickets = ticket.build_dataset(seed, int(150 * scale), partitions)
    expected = {
        **survey.expected_finals(surveys, partitions, MIXED_ENV),
        **cart.expected_finals(carts, partitions, MIXED_ENV),
        **ticket.expected_finals(tickets, partitions),
    }
    ticket_closing = tickets[-partitions:]  # build_dataset ends with them
    assert all(r.value["type"] == "heartbeat" for r in ticket_closing)

    def encoded(records: Iterable[Produced], encode: Encoder) -> list[Encoded]:
        return [encode(r) for r in records]

    return MixedDataset(
        records={
            "CXPULSE_TOPICS_SURVEY": encoded(surveys, survey.encode),
            "CXPULSE_TOPICS_CART": encoded(carts, cart.encode),
            "CXPULSE_TOPICS_TICKET": encoded(tickets[:-partitions], ticket.encode),
        },
        closing={
            "CXPULSE_TOPICS_SURVEY": encoded(survey.closing(surveys, partitions), survey.encode),
            "CXPULSE_TOPICS_CART": encoded(cart.closing(carts, partitions), cart.encode),
            "CXPULSE_TOPICS_TICKET": encoded(ticket_closing, ticket.encode),
        },
        expected=expected,
    )


async def produce_parts(
    bootstrap: str, env: dict[str, str], part: dict[str, list[Encoded]]
) -> None:
    """Produce one part (records per topic env key) to the topics ``env`` names."""
    for key, records in part.items():
        await produce(bootstrap, env[key], records)
