"""The survey family (SPEC §3.1): what one survey event observes.

Per ``response_id`` the entity is one flat list, one *incarnation* of the
response (the response as remembered, for the dedup horizon after its first
answer):

``[first_ts, labels]``, or ``[first_ts, labels, *firsts]``, or ``[first_ts, labels,
*firsts, prev]``

* ``first_ts``, ``labels``: its first answer's time and segments (it counts once
  in ``response_rate``, there);
* ``firsts``: eight values, the first answer to ``overall``, ``nps``, ``switch``
  and ``repurchase`` as ``ts, score`` (``None, None`` for none yet): the inputs
  of the correlation pairs, present once it has one of them;
* ``prev``: the previous incarnation ``[first_ts, labels, *firsts]``, while an
  answer of it can still arrive (see :meth:`SurveyFamily.observe`).

Flat, because every response lives for the horizon: one list per response, not
two, is less memory and less work for the garbage collector. A response with at
most one paired answer, at its first ``ts``, is held as one int instead
(:mod:`~cxpulse.streams.families.survey.packed`: the usual response in 32 bytes, not
144), in memory and in its changelog record, read back through the table of segments
the record carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.schemas.events import SCORE_RANGES, SurveyEvent, parse_survey
from cxpulse.schemas.fastpath import fast_surveys
from cxpulse.streams.aggregates import AggregateSpec
from cxpulse.streams.families.survey.metrics import (
    CORRELATIONS,
    SLOTS,
    S,
    answer_deltas,
    pair_deltas,
    survey_kpis,
)
from cxpulse.streams.families.survey.packed import (
    TS_SHIFT,
    first_ts,
    home_bits,
    home_list,
    homes_named,
    load,
    pack,
    registered_home,
    unpack,
)
from cxpulse.streams.family import Kpi, ObserveContext

_INVITATION = ((S.INVITATIONS, 1),)
_RESPONSE = ((S.RESPONSES, 1),)
_UNRESPONSE = ((S.RESPONSES, -1),)
#: where a response's first answer to each paired question is (``overall``, x, first):
#: its ``ts`` at that index of the entity, its score after it
_PAIRED = {"overall": 2, "nps": 4, "switch": 6, "repurchase": 8}
#: per correlation: the index of its question's first answer and its first counter slot
_OTHERS = tuple((4 + 2 * i, base) for i, (_, base, _) in enumerate(CORRELATIONS))
_FIRSTS_END = 10  # the end of ``firsts``; ``prev``, if any, follows
_NO_FIRSTS: tuple[Any, ...] = (None,) * 8
#: the counter increments of each answer, by question and score (a lookup, not a call, per
#: answer), and of a response's first answer (the answer's and the response's)
_ANSWER = {
    q: {score: answer_deltas(q, score) for score in range(lo, hi + 1)}
    for q, (lo, hi) in SCORE_RANGES.items()
}
_FIRST_ANSWER = {
    q: {score: (*deltas, *_RESPONSE) for score, deltas in by_score.items()}
    for q, by_score in _ANSWER.items()
}
#: per correlation: its question's index and its pair increments by overall, other score
#: (scores are 0..10 for both: SCORE_RANGES, validated on input)
_PAIR_TABLES = tuple(
    (i, tuple(tuple(pair_deltas(base, x, y) for y in range(11)) for x in range(11)))
    for i, base in _OTHERS
)

Incarnation = list[Any]  # [first_ts, labels] + optional firsts


def _incarnation(value: Sequence[Any]) -> Incarnation:
    """An entity value without its ``prev``, in canonical form (no all-``None`` firsts)."""
    inc = list(value[:_FIRSTS_END])
    return inc if len(inc) > 2 and any(v is not None for v in inc[2:]) else inc[:2]


def _compose(inc: Sequence[Any], prev: Sequence[Any] | None) -> list[Any]:
    """The entity value of an incarnation and its predecessor, in one canonical form."""
    if prev is None:
        return _incarnation(inc)
    head = list(inc[:_FIRSTS_END]) if len(inc) > 2 else [*inc[:2], *_NO_FIRSTS]
    return [*head, _incarnation(prev)]


def _pairs(inc: Sequence[Any]) -> list[tuple[int, int, int] | None]:
    """Each correlation's pair ``(attribution ts, x, y)``, or ``None`` without one."""
    if len(inc) <= 2 or inc[2] is None:
        return [None, None, None]
    ot, x = inc[2], inc[3]
    return [None if inc[i] is None else (max(ot, inc[i]), x, inc[i + 1]) for i, _ in _OTHERS]


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
    decode_many = staticmethod(fast_surveys)

    #: a response with one paired answer is an int, whose changelog record carries the
    #: segments its index names, read through them on restore (streams.family.Family)
    chunk_context = staticmethod(homes_named)
    load = staticmethod(load)
    compact = staticmethod(pack)

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms

    @staticmethod
    def _home(labels: tuple[str, ...]) -> list[str]:
        """One shared list per segment tuple for the responses' ``labels`` (never changed
        in place): less memory, an identity test where the pairs ride along, and the
        index a packed response names (:mod:`~cxpulse.streams.families.survey.packed`)."""
        return home_list(labels)

    def observe(self, event: SurveyEvent, ctx: ObserveContext) -> None:
        labels = ctx.labels(event)
        ts = event.ts
        if event.type == "invitation_sent":
            ctx.add(ts, labels, _INVITATION)
            return
        question, score = event.question, event.score
        assert question is not None and score is not None
        key = event.response_id
        value = ctx.entity(key)
        at = _PAIRED.get(question)
        if value is None:
            bits = home_bits(labels)
            if bits is not None:  # a new response, packed (the usual case)
                # the low bits as small ints, then one add: ``|`` on an int above
                # 2**30 costs ~190 instructions, the add about half (callgrind)
                ctx.open_entity(
                    key,
                    (ts << TS_SHIFT) + (bits if at is None else bits | at << 3 | score),
                    ts + self.horizon_ms,  # wake_at of the packed value, without the call
                    ts,
                    labels,
                    _FIRST_ANSWER[question][score],
                )
                return
        elif type(value) is int:
            first = value >> TS_SHIFT
            if at is None and first <= ts < first + self.horizon_ms:
                deltas = _ANSWER[question][score]  # an unpaired answer: the list path's end
                if deltas:
                    ctx.add(ts, labels, deltas)
                return
            value = unpack(value)
        if value is None or ts >= value[0] + self.horizon_ms:
            # A new response, or one forgotten by now in event time (its horizon is
            # behind this answer; the entity may linger until the batch's end). The old
            # incarnation stays while an answer of it could still come (it is dropped
            # when the watermark passes its horizon), so such an answer finds it.
            ctx.add(ts, labels, _FIRST_ANSWER[question][score])
            home = self._home(labels)
            if at is None:
                new: Incarnation = [ts, home]
            else:  # a literal, not ``extend``: an exact 80-byte array, not an over-allocated one
                new = [ts, home, None, None, None, None, None, None, None, None]
                new[at], new[at + 1] = ts, score
            ctx.set_entity(key, pack(new) if value is None else _compose(new, value))
            return
        deltas = _ANSWER[question][score]
        if ts < value[0] or (
            len(value) > _FIRSTS_END and ts < value[_FIRSTS_END][0] + self.horizon_ms
        ):
            # out of order before the response's first answer, or an answer of the
            # previous incarnation: the general (rarer) path
            if deltas:
                ctx.add(ts, labels, deltas)
            self._reorder(key, value, ts, labels, at, score, ctx)
            return
        if at is None:
            if deltas:
                ctx.add(ts, labels, deltas)
            return
        if len(value) == 2:  # the response's first paired answer: nothing to pair with yet
            if deltas:
                ctx.add(ts, labels, deltas)
            new = [value[0], value[1], None, None, None, None, None, None, None, None]
            new[at], new[at + 1] = ts, score
            ctx.set_entity(key, pack(new) if ts == value[0] else new)
            return
        held = value[at]
        if held is not None:
            if deltas:
                ctx.add(ts, labels, deltas)
            if ts < held:  # an earlier first answer replaces the held one
                self._reorder(key, value, ts, labels, at, score, ctx)
            return
        # The first answer to this question (the common case): new pairs, nothing to take
        # back. A pair at this answer's time in the same segments rides on its ``add``.
        new = value.copy()
        new[at], new[at + 1] = ts, score
        home = value[1]  # the response's segments: its pairs count there
        here = deltas
        if at == 2:
            for i, table in _PAIR_TABLES:
                other = new[i]
                if other is not None:
                    pair = table[score][new[i + 1]]
                    if other <= ts:
                        here = here + pair
                    else:
                        ctx.add(other, home, pair)
        elif new[2] is not None:
            pair = _PAIR_TABLES[at // 2 - 2][1][new[3]][score]
            if new[2] <= ts:
                here = here + pair
            else:
                ctx.add(new[2], home, pair)
        if here is deltas or home is registered_home(labels) or tuple(home) == labels:
            if here:
                ctx.add(ts, labels, here)
        else:
            if deltas:
                ctx.add(ts, labels, deltas)
            ctx.add(ts, home, here[len(deltas) :])
        ctx.set_entity(key, new)

    def _reorder(
        self,
        key: str,
        value: Sequence[Any],
        ts: int,
        labels: tuple[str, ...],
        at: int | None,
        score: int,
        ctx: ObserveContext,
    ) -> None:
        """An answer before the response's first, or of the previous incarnation."""
        prev = value[_FIRSTS_END] if len(value) > _FIRSTS_END else None
        if prev is not None and ts < prev[0] + self.horizon_ms:
            changed = self._answer(prev, ts, labels, at, score, ctx)
            if changed is not None:
                ctx.set_entity(key, _compose(value, changed))
            return
        changed = self._answer(value, ts, labels, at, score, ctx)
        if changed is not None:
            ctx.set_entity(key, pack(_compose(changed, prev)))

    def _answer(
        self,
        inc: Sequence[Any],
        ts: int,
        labels: tuple[str, ...],
        at: int | None,
        score: int,
        ctx: ObserveContext,
    ) -> Incarnation | None:
        """Apply one answer to an incarnation (any case); its new value, or ``None`` when
        unchanged. Pairs that change are taken back where they were and added anew."""
        old = _incarnation(inc)
        new = old if len(old) > 2 else [*old, *_NO_FIRSTS]
        if at is not None and (new[at] is None or ts < new[at]):
            new = new.copy() if new is old else new
            new[at], new[at + 1] = ts, score
        elif ts >= old[0]:
            return None
        if ts < old[0]:
            ctx.add(old[0], old[1], _UNRESPONSE)
            new = new.copy() if new is old else new
            new[0], new[1] = ts, self._home(labels)
            ctx.add(ts, new[1], _RESPONSE)
        moved = new[1] != old[1]
        for (_, base), was, cur in zip(_OTHERS, _pairs(old), _pairs(new), strict=True):
            if was == cur and not moved:
                continue
            if was is not None:
                ctx.add(was[0], old[1], pair_deltas(base, was[1], was[2], -1))
            if cur is not None:
                ctx.add(cur[0], new[1], pair_deltas(base, cur[1], cur[2]))
        return _incarnation(new)

    def wake_at(self, value: Any) -> int | None:
        """A response is forgotten the dedup horizon after its first answer."""
        if type(value) is int:
            return (value >> TS_SHIFT) + self.horizon_ms
        prev = value[_FIRSTS_END] if len(value) > _FIRSTS_END else value
        return prev[0] + self.horizon_ms

    def forget_at(self, value: Any) -> int:
        """A response is inert once the watermark passes its own horizon: dropped then."""
        first: int = value >> TS_SHIFT if type(value) is int else value[0]  # no call: per response
        return first + self.horizon_ms

    def forget_below(self, watermark: int) -> int:
        """Every packed response below this int is inert at ``watermark`` (its first ``ts``
        is in the bits above :data:`TS_SHIFT`): ``forget_at(v) <= watermark``, compared in C."""
        return (watermark - self.horizon_ms + 1) << TS_SHIFT

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        if first_ts(value) + self.horizon_ms <= watermark:
            ctx.drop_entity(key)
        else:  # only the previous incarnation's horizon passed
            ctx.set_entity(key, pack(_incarnation(unpack(value) if type(value) is int else value)))

    def kpis(self, counts: Sequence[int]) -> list[Kpi]:
        return survey_kpis(counts)
