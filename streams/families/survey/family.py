"""The survey family (SPEC §3.1): what one survey event observes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.schemas.events import SurveyEvent, parse_survey
from cxpulse.streams.aggregates import AggregateSpec
from cxpulse.streams.families.survey.metrics import SLOTS, S, answer_deltas, survey_kpis
from cxpulse.streams.family import Kpi, ObserveContext

_INVITATION = ((S.INVITATIONS, 1),)
_RESPONSE = ((S.RESPONSES, 1),)
_UNRESPONSE = ((S.RESPONSES, -1),)


class SurveyFamily:
    """Answers and invitations; a response counts once, at its first answer in event time.

    Entity state per ``response_id``: ``[first_ts, labels]``. When an earlier
    answer of the same response arrives out of order (within the lateness), the
    response moves to it: −1 at the old time and segment, +1 at the new one. Both
    are above the partition watermark, so no final window is touched. A response
    is remembered for the dedup horizon (default 24 h) after its first answer.
    """

    name = "survey"
    aggregate = AggregateSpec.sums(SLOTS)
    parse = staticmethod(parse_survey)

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms

    def observe(self, event: SurveyEvent, ctx: ObserveContext) -> None:
        labels = ctx.labels(event)
        if event.type == "invitation_sent":
            ctx.add(event.ts, labels, _INVITATION)
            return
        assert event.question is not None and event.score is not None
        deltas = answer_deltas(event.question, event.score)
        if deltas:
            ctx.add(event.ts, labels, deltas)
        first = ctx.entity(event.response_id)
        if first is None:
            ctx.add(event.ts, labels, _RESPONSE)
            ctx.set_entity(event.response_id, [event.ts, list(labels)])
        elif event.ts < first[0]:
            ctx.add(first[0], tuple(first[1]), _UNRESPONSE)
            ctx.add(event.ts, labels, _RESPONSE)
            ctx.set_entity(event.response_id, [event.ts, list(labels)])

    def wake_at(self, value: Any) -> int | None:
        """A response is forgotten the dedup horizon after its first answer."""
        return int(value[0]) + self.horizon_ms

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        ctx.drop_entity(key)

    def kpis(self, counts: Sequence[int]) -> list[Kpi]:
        return survey_kpis(counts)
