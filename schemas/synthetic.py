"""Realistic synthetic survey traffic, for the demo, the benchmark and the tests.

Customers on a few channels get survey invitations; most answer some of the
questions, with channel-specific score distributions that follow a daily rhythm
(evenings are a little grumpier). ``incident`` shifts one channel's scores down,
which is what the demo's alert story uses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHANNELS = ("web", "app", "email", "phone", "store")
_CHANNEL_WEIGHTS = (0.35, 0.3, 0.15, 0.12, 0.08)
_QUESTIONS = ("nps", "csat", "ces", "switch", "repurchase", "overall")
_RANGES = {"nps": (0, 10), "switch": (0, 10), "repurchase": (0, 10), "overall": (0, 10),
           "csat": (1, 5), "ces": (1, 7)}  # fmt: skip


@dataclass
class SurveyTraffic:
    """A deterministic (seeded) stream of survey events in event-time order."""

    seed: int = 7
    incident_channel: str | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0

    def _score(self, question: str, channel: str, ts_ms: int) -> int:
        lo, hi = _RANGES[question]
        hour = (ts_ms // 3_600_000) % 24
        mood = 0.72 - 0.06 * math.sin((hour - 3) / 24 * 2 * math.pi)
        mood += {"app": 0.03, "phone": -0.05}.get(channel, 0.0)
        if question == "switch":
            mood = 1.0 - mood  # switch intent is high when customers are unhappy
        if channel == self.incident_channel:
            mood = mood - 0.35 if question != "switch" else mood + 0.35
        x = min(max(self._rng.gauss(mood, 0.2), 0.0), 1.0)
        return lo + round(x * (hi - lo))

    def events_at(self, ts_ms: int) -> Iterator[dict[str, Any]]:
        """One invitation, and usually answers to it, around ``ts_ms``."""
        rng = self._rng
        self._n += 1
        n = self._n
        channel = rng.choices(CHANNELS, _CHANNEL_WEIGHTS)[0]
        customer = f"c{rng.randrange(50_000)}"
        survey, response = f"s{n % 5}", f"r{self.seed}-{n}"
        base = {"survey_id": survey, "response_id": response, "customer_id": customer,
                "channel": channel}  # fmt: skip
        yield {"event_id": f"inv-{self.seed}-{n}", "type": "invitation_sent", "ts": ts_ms, **base}
        if rng.random() < 0.45:
            return
        t = ts_ms + rng.randrange(5_000, 120_000)
        for question in _QUESTIONS:
            if rng.random() < 0.75:
                t += rng.randrange(1_000, 8_000)
                yield {
                    "event_id": f"ans-{self.seed}-{n}-{question}",
                    "type": "answer",
                    "ts": t,
                    "question": question,
                    "score": self._score(question, channel, t),
                    **base,
                }


@dataclass
class CartTraffic:
    """Deterministic (seeded) cart journeys: browsing, checkouts, purchases, returns.

    A journey adds a few items; some reach checkout and most of those buy within
    minutes; the rest are left. Some left carts come back hours later: a purchase
    (a recovery) or more browsing (a new session). ``broken_channel`` makes that
    channel's checkouts fail (nobody buys there), the demo's incident.
    """

    seed: int = 7
    broken_channel: str | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0

    def journey(self, ts_ms: int) -> list[dict[str, Any]]:
        """Every event of one cart's story starting at ``ts_ms`` (not in time order overall)."""
        rng = self._rng
        self._n += 1
        cart = f"cart-{self.seed}-{self._n}"
        channel = rng.choices(CHANNELS, _CHANNEL_WEIGHTS)[0]
        customer = f"c{rng.randrange(50_000)}" if rng.random() < 0.8 else None
        events: list[dict[str, Any]] = []
        value = 0.0
        t = ts_ms

        def emit(kind: str, at: int, cart_value: float, ch: str = channel) -> None:
            ev: dict[str, Any] = {
                "event_id": f"{cart}-{len(events)}",
                "type": kind,
                "ts": at,
                "cart_id": cart,
                "channel": ch,
                "cart_value": cart_value,
            }
            if customer is not None:
                ev["customer_id"] = customer
            events.append(ev)

        for _ in range(rng.randint(1, 5)):
            value = round(value + rng.choice((9.99, 19.5, 24.0, 5.25, 120.0)), 2)
            emit("item_added", t, value)
            t += rng.randrange(10_000, 240_000)
        if value > 20 and rng.random() < 0.2:
            value = round(value - 5.25, 2)
            emit("item_removed", t, value)
            t += rng.randrange(10_000, 120_000)
        if rng.random() < 0.55:
            emit("checkout_started", t, value)
            t += rng.randrange(20_000, 300_000)
            if rng.random() < 0.7 and channel != self.broken_channel:
                emit("purchased", t, value)
                return events
        if rng.random() < 0.25:  # comes back later
            t += rng.randrange(40 * 60_000, 6 * 3_600_000)
            if rng.random() < 0.6:
                emit("purchased", t, value)  # a recovery
            else:
                emit("item_added", t, round(value + 9.99, 2), rng.choice(CHANNELS))
        return events
