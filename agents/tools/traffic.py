"""Realistic synthetic survey traffic, for the demo, the benchmark and the tests.

Customers on a few channels get survey invitations; most answer some of the
questions, with channel-specific score distributions that follow a daily rhythm
(evenings are a little grumpier). One response's answers share the customer's
own mood, so the overall experience correlates with the other answers (about
r = 0.5 with nps and repurchase, −0.5 with switch: SPEC §3.1's correlations).
``incident`` shifts one channel's scores down, which is what the demo's alert
story uses.
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
_RANGES = {
    "nps": (0, 10),
    "switch": (0, 10),
    "repurchase": (0, 10),
    "overall": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
}

#: spread of one customer's mood, shared by the answers of a response
_MOOD_SD = 0.15
#: spread of one answer around the customer's mood (√(0.15² + 0.13²) ≈ 0.2)
_NOISE_SD = 0.13


@dataclass
class SurveyTraffic:
    """A deterministic (seeded) stream of survey events in event-time order."""

    seed: int = 7
    incident_channel: str | None = None
    #: when the synthetic day starts (its hour 0): the daily rhythm is relative to it,
    #: so a generator started at any hour can tell the same story (0: UTC midnight)
    day_origin_ms: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        # the customers' own moods come from a generator of their own, so that the
        # main one draws what it always drew (the same events, times and questions)
        self._moods = random.Random(f"mood-{self.seed}")
        self._n = 0

    def _score(self, question: str, channel: str, ts_ms: int, own: float) -> int:
        lo, hi = _RANGES[question]
        hour = ((ts_ms - self.day_origin_ms) // 3_600_000) % 24
        mood = 0.72 - 0.06 * math.sin((hour - 3) / 24 * 2 * math.pi)
        mood += {"app": 0.03, "phone": -0.05}.get(channel, 0.0) + own
        if question == "switch":
            mood = 1.0 - mood  # switch intent is high when customers are unhappy
        if channel == self.incident_channel:
            mood = mood - 0.35 if question != "switch" else mood + 0.35
        # the customer's mood (sd 0.15) plus this answer's noise (sd 0.13): the same
        # spread as independent answers with sd 0.2 had, now shared within a response
        x = min(max(self._rng.gauss(mood, _NOISE_SD), 0.0), 1.0)
        return lo + round(x * (hi - lo))

    def events_at(self, ts_ms: int) -> Iterator[dict[str, Any]]:
        """One invitation, and usually answers to it, around ``ts_ms``."""
        rng = self._rng
        self._n += 1
        n = self._n
        channel = rng.choices(CHANNELS, _CHANNEL_WEIGHTS)[0]
        customer = f"c{rng.randrange(50_000)}"
        survey, response = f"s{n % 5}", f"r{self.seed}-{n}"
        base = {
            "survey_id": survey,
            "response_id": response,
            "customer_id": customer,
            "channel": channel,
        }
        yield {"event_id": f"inv-{self.seed}-{n}", "type": "invitation_sent", "ts": ts_ms, **base}
        if rng.random() < 0.45:
            return
        own = self._moods.gauss(0.0, _MOOD_SD)
        t = ts_ms + rng.randrange(5_000, 120_000)
        for question in _QUESTIONS:
            if rng.random() < 0.75:
                t += rng.randrange(1_000, 8_000)
                yield {
                    "event_id": f"ans-{self.seed}-{n}-{question}",
                    "type": "answer",
                    "ts": t,
                    "question": question,
                    "score": self._score(question, channel, t, own),
                    **base,
                }


def _at_pace(events: list[dict[str, Any]], start: int, pace: float) -> list[dict[str, Any]]:
    """Scale every event's distance from ``start`` by ``pace`` (order is kept)."""
    if pace != 1.0:
        for ev in events:
            ev["ts"] = start + round((ev["ts"] - start) * pace)
    return events


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
    #: scales every duration of a journey (the demo's 0.2 fits its 90 s abandonment)
    pace: float = 1.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0

    def journey(self, ts_ms: int) -> list[dict[str, Any]]:
        """Every event of one cart's story starting at ``ts_ms`` (not in time order overall)."""
        events = self._journey(ts_ms)
        return _at_pace(events, ts_ms, self.pace)

    def _journey(self, ts_ms: int) -> list[dict[str, Any]]:
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


def is_first_response(event: dict[str, Any]) -> bool:
    """The human, public agent reply of a synthetic ticket (one per ticket, none if merged)."""
    return (
        event.get("type") == "agent_reply"
        and "via" not in event
        and event.get("public", True) is not False
    )


@dataclass
class TicketTraffic:
    """Deterministic (seeded) support tickets: bots first, agents later, reopen cycles, merges.

    ``pace`` scales every duration of a ticket's life (the demo's 1/100 turns the
    usual hours into minutes). Each ticket has exactly one first human response
    (see ``is_first_response``); the demo's incident re-times it with a queue.
    """

    seed: int = 7
    pace: float = 1.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0

    def lifecycle(
        self, ts_ms: int, channel: str | None = None, tags: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Every event of one ticket's life starting at ``ts_ms`` (not in time order overall).

        ``channel`` and ``tags`` are for the demo's flood of tickets about a broken
        checkout; the channel is drawn all the same, so a seed's other tickets stay put.
        """
        events = self._lifecycle(ts_ms, channel, tags)
        return _at_pace(events, ts_ms, self.pace)

    def _lifecycle(
        self, ts_ms: int, channel: str | None, extra_tags: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        rng = self._rng
        self._n += 1
        ticket = f"t-{self.seed}-{self._n}"
        drawn = rng.choices(CHANNELS, _CHANNEL_WEIGHTS)[0]
        channel = channel or drawn
        priority = rng.choices(("urgent", "high", "normal", "low"), (0.05, 0.2, 0.6, 0.15))[0]
        events: list[dict[str, Any]] = []

        def emit(kind: str, at: int, **fields: Any) -> None:
            ev = {
                "event_id": f"{ticket}-{len(events)}",
                "type": kind,
                "ts": at,
                "ticket_id": ticket,
                **fields,
            }
            events.append(ev)

        tags = ["complaint"] if rng.random() < 0.1 else []
        if rng.random() < 0.3:
            tags.append(rng.choice(("billing", "delivery", "Complaint")))
        tags.extend(extra_tags)
        emit("created", ts_ms, channel=channel, priority=priority, tags=tags)
        t = ts_ms
        if rng.random() < 0.6:  # a bot answers first; it never counts
            emit("agent_reply", t + rng.randrange(5_000, 60_000), via="bot")
        if rng.random() < 0.15:
            emit("agent_reply", t + rng.randrange(60_000, 600_000), public=False)  # a note
        if rng.random() < 0.05:
            emit("merged", t + rng.randrange(60_000, 7_200_000), into=f"t-{self.seed}-1")
            return events
        scale = {"urgent": 0.2, "high": 0.5, "normal": 1.0, "low": 2.0}[priority]
        t += int(rng.expovariate(1 / (3 * 3_600_000 * scale))) + 60_000
        emit("agent_reply", t)
        for _ in range(3):  # solve, maybe reopen and solve again
            t += rng.randrange(600_000, 12 * 3_600_000)
            if rng.random() < 0.3:
                emit("customer_reply", t - 300_000)
            emit("solved", t)
            if rng.random() > 0.2:
                break
            t += rng.randrange(600_000, 6 * 3_600_000)
            emit("reopened", t)
        if rng.random() < 0.8:
            emit("closed", t + rng.randrange(3_600_000, 24 * 3_600_000))
        return events


#: where customers come from, with what each channel costs per signup (currency units)
ACQUISITION = {"ads": 180.0, "web": 60.0, "partner": 120.0, "app": 90.0}
_ACQ_WEIGHTS = (0.35, 0.3, 0.15, 0.2)
PLANS = {"starter": 29.0, "pro": 99.0, "business": 299.0}
_DAY_MS = 86_400_000


@dataclass
class CustomerTraffic:
    """Deterministic (seeded) SaaS customer lives: leads, signups, plans, churn.

    A customer often starts as a lead, signs up through a channel (some are
    referred by an earlier customer), subscribes to a plan, may upgrade or
    downgrade, and may cancel, sometimes to come back later. ``spend`` draws the
    marketing spend of each channel (channels cost differently per signup).
    Customers of ``churn_channel`` cancel within days: the demo's incident.
    ``pace`` scales every duration (the demo compresses months into minutes).
    """

    seed: int = 7
    churn_channel: str | None = None
    pace: float = 1.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0
        self._customers: list[str] = []

    def spend(self, ts_ms: int, signups_per_channel: float = 1.0) -> list[dict[str, Any]]:
        """One acquisition_spend per channel at ``ts_ms``, about the cost of its signups."""
        rng = self._rng
        out = []
        for channel, cost in ACQUISITION.items():
            self._n += 1
            amount = round(cost * signups_per_channel * rng.uniform(0.7, 1.3), 2)
            out.append(
                {
                    "event_id": f"spend-{self.seed}-{self._n}",
                    "type": "acquisition_spend",
                    "ts": ts_ms,
                    "channel": channel,
                    "amount": amount,
                }
            )
        return out

    def journey(self, ts_ms: int) -> list[dict[str, Any]]:
        """Every event of one customer's life from ``ts_ms`` (not in time order overall)."""
        rng = self._rng
        self._n += 1
        customer = f"cust-{self.seed}-{self._n}"
        channel = rng.choices(tuple(ACQUISITION), _ACQ_WEIGHTS)[0]
        events: list[dict[str, Any]] = []
        t = float(ts_ms)

        def emit(kind: str, **fields: Any) -> None:
            ev = {"event_id": f"{customer}-{len(events)}", "type": kind, "ts": int(t), **fields}
            events.append(ev)

        def later(days: float) -> None:
            nonlocal t
            t += days * _DAY_MS * self.pace * rng.uniform(0.5, 1.5)

        signup: dict[str, Any] = {"customer_id": customer, "channel": channel}
        if rng.random() < 0.6:
            lead = f"lead-{self.seed}-{self._n}"
            emit("lead_created", lead_id=lead, channel=channel)
            signup["lead_id"] = lead
            later(2)
        elif rng.random() < 0.3:  # a lead that never converts
            emit("lead_created", lead_id=f"lead-{self.seed}-{self._n}-x", channel=channel)
        if self._customers and rng.random() < 0.2:
            signup["referred_by"] = rng.choice(self._customers)
        emit("signed_up", **signup)
        self._customers.append(customer)
        if rng.random() < 0.25:
            return events  # signed up, never paid
        later(0.5)
        plan = rng.choices(tuple(PLANS), (0.5, 0.4, 0.1))[0]
        emit("subscription_started", customer_id=customer, mrr=PLANS[plan], plan=plan)
        churny = channel == self.churn_channel
        for _ in range(rng.randint(0, 3)):
            later(2 if churny else 10)
            if (churny and rng.random() < 0.7) or rng.random() < 0.12:
                emit("subscription_cancelled", customer_id=customer)
                if rng.random() < 0.2:  # comes back
                    later(7)
                    emit("subscription_started", customer_id=customer, mrr=PLANS["starter"])
                    continue
                return events
            plan = rng.choice(tuple(PLANS))
            emit("subscription_changed", customer_id=customer, mrr=PLANS[plan], plan=plan)
        return events
