"""A response with at most one paired answer, held as one int instead of a list.

Every response is remembered for the dedup horizon (a day by default), and most
hold one answer all that time, or two at the same ``ts``: as the list of
:mod:`cxpulse.streams.families.survey.family` that is 144 bytes (a 10-slot list)
or 80 (a 2-slot one), and a container the garbage collector scans; as a small
int it is 32 bytes, and none. On the peers' 200,000 answers that is ~22 MB of a
worker's ~90 MB of state (docs/performance.md).

Layout: ``ts << 18 | home << 7 | question << 4 | score``, where ``home`` indexes
the process-wide list of segment lists (:func:`home_list`), ``question`` is 0 (no
paired answer) or the paired question's index in the list form divided by two,
and ``score`` its score (0-10). A value packs only when its paired answer, if
any, is at the response's first ``ts`` and its segments are among the first
:data:`MAX_HOMES` seen by the process; any other value stays a list. The form
is canonical (one value, one form), so entities compare equal across processors
of one process. A changelog record holds the values as they are, with the
segments of the home indexes they name (:func:`homes_named`; another process's
indexes differ), read back through them on restore (:func:`load`): 16 bytes of
JSON a response, not ~60, and a record names only its own values' homes, so its
size does not grow with the segment combinations the process has seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TS_SHIFT = 18
HOME_SHIFT = 7
#: homes a packed value can name (11 bits); segments beyond them keep the list form
MAX_HOMES = 1 << (TS_SHIFT - HOME_SHIFT)
_HOME_MASK = MAX_HOMES - 1
_FIRSTS_END = 10  # the list form's paired answers end here (survey.family)

#: the shared segment list of each label tuple (never changed in place: a response's
#: ``labels``), by index, and each tuple's bits in a packed value while it has one
_HOMES: dict[tuple[str, ...], list[str]] = {}
_BY_INDEX: list[list[str]] = []
_BITS: dict[tuple[str, ...], int] = {}


def home_list(labels: tuple[str, ...]) -> list[str]:
    """The one list for these segments in this process (registered at first sight)."""
    shared = _HOMES.get(labels)
    if shared is None:
        shared = _HOMES[labels] = list(labels)
        if len(_BY_INDEX) < MAX_HOMES:
            _BITS[labels] = len(_BY_INDEX) << HOME_SHIFT
            _BY_INDEX.append(shared)
    return shared


def registered_home(labels: tuple[str, ...]) -> list[str] | None:
    """The registered list for these segments, if any (no registration)."""
    return _HOMES.get(labels)


#: These segments' bits in a packed value, or ``None`` when they have none: the dict's
#: own ``get``, not a function around it (once per survey answer)
home_bits: Callable[[tuple[str, ...]], int | None] = _BITS.get


def pack(value: Any) -> Any:
    """The packed form of a value when it has one, else the value itself."""
    if type(value) is int:
        return value
    n = len(value)
    if n != 2 and n != _FIRSTS_END:
        return value  # with a previous incarnation
    bits = _BITS.get(tuple(value[1]))
    if bits is None:
        return value
    ts = value[0]
    packed = ts << TS_SHIFT | bits
    if n == 2:
        return packed
    question = 0
    for at in (2, 4, 6, 8):
        answered = value[at]
        if answered is None:
            continue
        if question or answered != ts:
            return value  # two paired answers, or one after the first ts
        question = at
    if not question:
        return packed
    return packed | question << 3 | value[question + 1]


def unpack(packed: int) -> list[Any]:
    """The list form of a packed value."""
    ts = packed >> TS_SHIFT
    shared = _BY_INDEX[packed >> HOME_SHIFT & _HOME_MASK]
    question = packed >> 3 & 14  # the paired answer's index in the list form (0: none)
    if not question:
        return [ts, shared]
    value = [ts, shared, None, None, None, None, None, None, None, None]
    value[question], value[question + 1] = ts, packed & 15
    return value


def homes_named(values: Iterable[Any]) -> dict[str, list[str]] | None:
    """The segments of each home the packed ``values`` name, by index (a JSON object's
    string keys), for the changelog record that holds them; ``None`` if none is packed."""
    # the low bits by ``%`` first: ``>>`` and ``&`` on an int above 2**30 take ~190
    # instructions each, ``%`` by a small int about half, then ``>>`` is on a small one
    shift, low = HOME_SHIFT, 1 << TS_SHIFT
    named = {v % low >> shift for v in values if type(v) is int}
    if not named:
        return None
    return {str(i): _BY_INDEX[i] for i in sorted(named)}


def load(value: Any, homes: dict[str, list[str]] | list[list[str]]) -> Any:
    """A changelog value as this process holds it: a packed one is read through the
    ``homes`` its record carries (:func:`homes_named` of the process that wrote it;
    records of an earlier version carry that process's whole list of homes)."""
    if type(value) is not int:
        return value
    ts = value >> TS_SHIFT
    index = value >> HOME_SHIFT & _HOME_MASK
    named = homes[index] if isinstance(homes, list) else homes[str(index)]
    shared = home_list(tuple(named))
    question = value >> 3 & 14
    if not question:
        return pack([ts, shared])
    listed = [ts, shared, None, None, None, None, None, None, None, None]
    listed[question], listed[question + 1] = ts, value & 15
    return pack(listed)


def first_ts(value: Any) -> int:
    """The response's first answer's ``ts``, of either form."""
    return value >> TS_SHIFT if type(value) is int else value[0]
