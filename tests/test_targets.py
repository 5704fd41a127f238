"""The target grammar, as a table: no database needed."""

from __future__ import annotations

import re

import pytest

from alquimista_schema import targets
from alquimista_schema.errors import BadEvent, InvalidTarget

VALID = [
    ("head", None, "head", "head", 0), ("heads", None, "heads", "heads", 0),
    ("base", "down", "base", "base", 0), ("017", None, "017", "017", 0),
    ("lead_ingestion", None, "lead_ingestion", "lead_ingestion", 0),
    ("all", "up", "head", "head", 0),  # the legacy runner's word for head
    ("+1", "up", "+1", None, 1), ("-2", "down", "-2", None, -2),
    ("head-1", None, "head-1", "head", -1),
    ("017+2", "up", "017+2", "017", 2), ("base+1", None, "base+1", "base", 1),
]


@pytest.mark.parametrize(("value", "direction", "text", "name", "steps"), VALID)
def test_valid_targets(value: str, direction: targets.Direction | None, text: str,
                       name: str | None, steps: int) -> None:
    assert targets.parse(value, direction) == targets.Target(text, name, steps)


INVALID = [
    ("", None, "a target must be"), (None, None, "not None"), (17, None, "not 17"),
    ("017\n", None, "is not a target"), (" head", None, "is not a target"),
    ("x" * 41, None, "is not a target"), ("-", None, "is not a target"),
    ("017; DROP TABLE leads", None, "is not a target"), ("+0", None, "moves nowhere"),
    ("head+1", None, "past the end"), ("base-1", "down", "past the end"),
    ("-1", "up", "upgrade -1 goes backwards: use downgrade -1"),
    ("+1", "down", "downgrade +1 goes forwards: use upgrade +1"),
    ("all", "down", "'all' (the legacy runner's word for head) only goes up"),
    ("all", None, "only goes up"),
]


@pytest.mark.parametrize(("value", "direction", "message"), INVALID)
def test_invalid_targets(value: object, direction: targets.Direction | None,
                         message: str) -> None:
    with pytest.raises(InvalidTarget, match=re.escape(message)) as caught:
        targets.parse(value, direction)
    assert isinstance(caught.value, BadEvent)  # from an event, it is a bad event
    assert caught.value.code == "BAD_EVENT"


# Every refusal, word for word: the message is the interface (it says what to write instead).
NOT_A_TARGET = ("{} is not a target: expected a revision id, head, base, +N or -N (e.g. 017, "
                "head, +1, head-1)")
MESSAGES = [
    (None, None, "a target must be a revision id, head, base, +N or -N, not None"),
    ("", None, "a target must be a revision id, head, base, +N or -N, not ''"),
    ("all", "down", "'all' (the legacy runner's word for head) only goes up: name a revision, "
                    "base, or -N"),
    ("017\n", None, NOT_A_TARGET.format(repr("017\n"))),
    ("+0", None, "'+0' moves nowhere: a relative step needs N >= 1"),
    ("head+1", None, "'head+1' is past the end of the history"),
    ("heads+2", "up", "'heads+2' is past the end of the history"),
    ("base-1", None, "'base-1' is past the end of the history"),
    ("-3", "up", "upgrade -3 goes backwards: use downgrade -3"),
    ("+3", "down", "downgrade +3 goes forwards: use upgrade +3"),
    # a value is shown whole up to 40 characters (its repr), else cut to 37 and "..."
    ("x" * 37 + "!", None, NOT_A_TARGET.format(repr("x" * 37 + "!"))),  # 40 with quotes
    ("x" * 38 + "!", None, NOT_A_TARGET.format(repr("x" * 38 + "!")[:37] + "...")),
]


@pytest.mark.parametrize(("value", "direction", "message"), MESSAGES,
                         ids=[f"{i}-{direction}" for i, (_, direction, _) in enumerate(MESSAGES)])
def test_each_refusal_says_exactly_what_is_wrong(value: object,
                                                 direction: targets.Direction | None,
                                                 message: str) -> None:
    with pytest.raises(InvalidTarget) as caught:
        targets.parse(value, direction)
    assert str(caught.value) == message
