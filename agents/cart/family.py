"""The cart family (SPEC §3.2): sessions, abandonment in event time, recoveries.

Per ``cart_id`` the entity holds the events not yet applied (``q``, sorted by
event time, ties by arrival), the open session (``o``) and the last abandoned
session (``a``, kept for the recovery window). Events are applied only once the
effective watermark has passed them, so no earlier event of the cart can still
arrive: outcomes equal applying each cart's events sorted by ``ts``, whatever
their arrival order within the lateness. Abandonment is decided when the
watermark reaches last activity + ``abandon_after``; an event at exactly that
time comes after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agents.cart.metrics import SLOTS, C, cart_kpis, to_micros
from schemas.events import CartEvent, parse_cart
from streams.family import Kpi, ObserveContext

CHECKOUT_TYPES = frozenset({"checkout_started", "purchased"})
OPEN_GAUGE = "cx_carts_open"


class CartFamily:
    """Cart sessions; see the module docstring for the state kept per cart."""

    name = "cart"
    slots = SLOTS
    parse = staticmethod(parse_cart)

    def __init__(self, abandon_after_ms: int, recovery_window_ms: int) -> None:
        self.abandon_after_ms = abandon_after_ms
        self.recovery_window_ms = recovery_window_ms

    # ------------------------------------------------------------ events
    def observe(self, event: CartEvent, ctx: ObserveContext) -> None:
        state = ctx.entity(event.cart_id) or {"q": [], "n": 0, "o": None, "a": None}
        item = [event.ts, state["n"], event.type, to_micros(event.cart_value),
                list(ctx.labels(event))]  # fmt: skip
        queue = sorted([*state["q"], item], key=lambda e: (e[0], e[1]))
        ctx.set_entity(event.cart_id, {**state, "q": queue, "n": state["n"] + 1})

    def wake_at(self, value: Any) -> int | None:
        times = []
        if value["q"]:
            times.append(value["q"][0][0] + 1)  # applied once the watermark is past it
        if value["o"] is not None:
            times.append(value["o"]["last"] + self.abandon_after_ms)
        if value["a"] is not None:
            times.append(value["a"]["at"] + self.recovery_window_ms + 1)
        return min(times) if times else 0

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        queue = list(value["q"])
        session = None if value["o"] is None else dict(value["o"])
        abandoned = value["a"]
        while True:
            due = None if session is None else session["last"] + self.abandon_after_ms
            if due is not None and due <= watermark and (not queue or due <= queue[0][0]):
                self._abandon(session, due, ctx)  # type: ignore[arg-type]
                abandoned, session = {"at": due, "lb": session["lb"]}, None  # type: ignore[index]
                continue
            if queue and queue[0][0] < watermark:
                ts, _, kind, micros, labels = queue.pop(0)
                session, abandoned = self._apply(ts, kind, micros, labels, session, abandoned, ctx)
                continue
            break
        if abandoned is not None and session is None:
            if watermark > abandoned["at"] + self.recovery_window_ms:
                abandoned = None  # no purchase can be a recovery any more
        if not queue and session is None and abandoned is None:
            ctx.drop_entity(key)
        else:
            ctx.set_entity(key, {"q": queue, "n": value["n"], "o": session, "a": abandoned})

    def _apply(
        self,
        ts: int,
        kind: str,
        micros: int,
        labels: list[str],
        session: dict[str, Any] | None,
        abandoned: dict[str, Any] | None,
        ctx: ObserveContext,
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """One event in event-time order; returns the new (open session, abandoned session)."""
        if session is None:
            if (
                kind == "purchased"
                and abandoned is not None
                and ts - abandoned["at"] <= self.recovery_window_ms
            ):
                ctx.add(ts, abandoned["lb"], ((C.RECOVERED, 1), (C.RECOVERED_VALUE, micros)))
                return None, abandoned  # the abandonment stays; no session is added
            session = {"lb": labels, "last": ts, "v": micros, "co": False}
            abandoned = None  # any other event after an abandonment opens a new session
        else:
            session = {**session, "last": ts, "v": micros}
        if kind in CHECKOUT_TYPES:
            session["co"] = True
        if kind == "purchased":
            ctx.add(ts, session["lb"], ((C.CONVERTED, 1), (C.CHECKOUT_CONVERTED, 1)))
            return None, None
        return session, abandoned

    def _abandon(self, session: dict[str, Any], at: int, ctx: ObserveContext) -> None:
        deltas: list[tuple[int, int]] = [(C.ABANDONED, 1), (C.ABANDONED_VALUE, session["v"])]
        if session["co"]:
            deltas.append((C.CHECKOUT_ABANDONED, 1))
        ctx.add(at, session["lb"], deltas)

    # ----------------------------------------------------------- outputs
    def gauges(self, value: Any) -> Iterable[tuple[str, str]]:
        """An open session counts in ``cx_carts_open`` under its segments.

        A cart whose first events are still waiting for the watermark counts as open
        already (under its first event's segments), unless that event is a purchase
        that may be a recovery: the gauge is about now, not about final windows.
        """
        session = value["o"]
        if session is not None:
            labels = session["lb"]
        elif value["q"] and not (value["q"][0][2] == "purchased" and value["a"] is not None):
            labels = value["q"][0][4]
        else:
            return ()
        return [(OPEN_GAUGE, label) for label in labels]

    def kpis(self, counts: Sequence[int]) -> list[Kpi]:
        return cart_kpis(counts)
