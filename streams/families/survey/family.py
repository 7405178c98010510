"""The survey family (SPEC §3.1): what one survey event observes.

Per ``response_id`` the entity is a compact list, one *incarnation* of the
response (the response as remembered, for the dedup horizon after its first
answer):

``[first_ts, labels]`` or ``[first_ts, labels, firsts]`` or ``[first_ts, labels, firsts, prev]``

* ``first_ts``, ``labels``: its first answer's time and segments (it counts once
  in ``response_rate``, there);
* ``firsts``: the first answer (``[ts, score]`` or ``None``) to ``overall``,
  ``nps``, ``switch`` and ``repurchase``, the inputs of the correlation pairs,
  or ``None`` while it has none;
* ``prev``: the previous incarnation ``[first_ts, labels, firsts]``, while an
  answer of it can still arrive (see :meth:`SurveyFamily.observe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.schemas.events import SurveyEvent, parse_survey
from cxpulse.streams.aggregates import AggregateSpec
from cxpulse.streams.families.survey.metrics import (
    CORRELATIONS,
    SLOTS,
    S,
    answer_deltas,
    pair_deltas,
    survey_kpis,
)
from cxpulse.streams.family import Kpi, ObserveContext

_INVITATION = ((S.INVITATIONS, 1),)
_RESPONSE = ((S.RESPONSES, 1),)
_UNRESPONSE = ((S.RESPONSES, -1),)
#: index in ``firsts`` of each question a correlation pairs (``overall`` is x)
_PAIRED = {"overall": 0, "nps": 1, "switch": 2, "repurchase": 3}
#: per correlation (in ``firsts`` order from 1): its first counter slot
_BASES = tuple(base for _, base, _ in CORRELATIONS)

Incarnation = list[Any]  # [first_ts, labels] + optional [firsts]


def _compose(inc: Sequence[Any], prev: Sequence[Any] | None) -> list[Any]:
    """The entity value of an incarnation and its predecessor, in one canonical form."""
    firsts = inc[2] if len(inc) > 2 else None
    if prev is None:
        return [inc[0], inc[1]] if firsts is None else [inc[0], inc[1], firsts]
    return [inc[0], inc[1], firsts, _compose(prev, None)]


def _has_overall(firsts: Sequence[Any] | None) -> bool:
    return firsts is not None and firsts[0] is not None


def _pairs(firsts: Sequence[Any] | None) -> list[tuple[int, int, int] | None]:
    """Each correlation's pair ``(attribution ts, x, y)``, or ``None`` without one."""
    if firsts is None or firsts[0] is None:
        return [None, None, None]
    ot, x = firsts[0]
    out: list[tuple[int, int, int] | None] = []
    for other in firsts[1:]:
        out.append(None if other is None else (max(ot, other[0]), x, other[1]))
    return out


class SurveyFamily:
    """Answers and invitations; see the module docstring for the state per response.

    A response counts once, at its first answer in event time. When an earlier
    answer of the same response arrives out of order (within the lateness), the
    response moves to it: −1 at the old time and segment, +1 at the new one. A
    correlation pair is the response's first ``overall`` answer with its first
    answer to the other question; when either is replaced by an earlier one, or
    the response's segment moves, the old pair is taken back at its old
    attribution and segment and the new one added. Every time touched is at or
    above the partition watermark (the earlier answer was not late, and the pair
    it replaces is later still), so no final window changes.
    """

    name = "survey"
    aggregate = AggregateSpec.sums(SLOTS)
    parse = staticmethod(parse_survey)

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms

    def observe(self, event: SurveyEvent, ctx: ObserveContext) -> None:
        labels = ctx.labels(event)
        ts = event.ts
        if event.type == "invitation_sent":
            ctx.add(ts, labels, _INVITATION)
            return
        assert event.question is not None and event.score is not None
        deltas = answer_deltas(event.question, event.score)
        if deltas:
            ctx.add(ts, labels, deltas)
        key = event.response_id
        value = ctx.entity(key)
        slot = _PAIRED.get(event.question)
        if value is None or ts >= value[0] + self.horizon_ms:
            # A new response, or one forgotten by now in event time (its horizon is
            # behind this answer; the entity may linger until the batch's end). The old
            # incarnation stays while an answer of it could still come (it is dropped
            # when the watermark passes its horizon), so such an answer finds it.
            ctx.add(ts, labels, _RESPONSE)
            new: Incarnation = [ts, list(labels)]
            if slot is not None:
                firsts: list[Any] = [None, None, None, None]
                firsts[slot] = [ts, event.score]
                new.append(firsts)
            ctx.set_entity(key, _compose(new, None if value is None else value[:3]))
            return
        prev = value[3] if len(value) > 3 else None
        if prev is not None and ts < prev[0] + self.horizon_ms:
            changed = self._answer(prev, ts, labels, slot, event.score, ctx)
            if changed is not None:
                ctx.set_entity(key, _compose(value[:3], changed))
            return
        changed = self._answer(value, ts, labels, slot, event.score, ctx)
        if changed is not None:
            ctx.set_entity(key, _compose(changed, prev))

    def _answer(
        self,
        inc: Sequence[Any],
        ts: int,
        labels: Sequence[str],
        slot: int | None,
        score: int,
        ctx: ObserveContext,
    ) -> Incarnation | None:
        """Apply one answer to an incarnation; its new value, or ``None`` when unchanged."""
        first_ts, old_labels = inc[0], inc[1]
        firsts = inc[2] if len(inc) > 2 else None
        new_firsts = firsts
        if slot is not None:
            held = None if firsts is None else firsts[slot]
            if held is None or ts < held[0]:
                new_firsts = [None, None, None, None] if firsts is None else list(firsts)
                new_firsts[slot] = [ts, score]
        new_labels = old_labels
        if ts < first_ts:
            ctx.add(first_ts, old_labels, _UNRESPONSE)
            new_labels = list(labels)
            ctx.add(ts, new_labels, _RESPONSE)
            first_ts = ts
        elif new_firsts is firsts:
            return None
        if _has_overall(firsts) or _has_overall(new_firsts):
            moved = new_labels != old_labels
            old_pairs, new_pairs = _pairs(firsts), _pairs(new_firsts)
            for base, old, cur in zip(_BASES, old_pairs, new_pairs, strict=True):
                if old == cur and not moved:
                    continue
                if old is not None:
                    ctx.add(old[0], old_labels, pair_deltas(base, old[1], old[2], -1))
                if cur is not None:
                    ctx.add(cur[0], new_labels, pair_deltas(base, cur[1], cur[2]))
        return [first_ts, new_labels] if new_firsts is None else [first_ts, new_labels, new_firsts]

    def wake_at(self, value: Any) -> int | None:
        """A response is forgotten the dedup horizon after its first answer."""
        if len(value) > 3 and value[3] is not None:
            return int(value[3][0]) + self.horizon_ms
        return int(value[0]) + self.horizon_ms

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        if value[0] + self.horizon_ms <= watermark:
            ctx.drop_entity(key)
        else:  # only the previous incarnation's horizon passed
            ctx.set_entity(key, _compose(value[:3], None))

    def kpis(self, counts: Sequence[int]) -> list[Kpi]:
        return survey_kpis(counts)
