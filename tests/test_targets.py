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
