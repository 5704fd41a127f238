"""The revision-target grammar, in one place: what the CLI, the events and the verbs accept.

A target is ``head``, ``heads``, ``base``, a revision id (``017``), or a relative
step: ``+N``/``-N`` from where the database is, or ``REV+N``/``REV-N`` from a named
revision (``head-1``, ``017+2``). The legacy runner's ``all`` means ``head``. Whether
a well-formed target names something in the history is the verbs' question; this
module only says whether it is well formed, and whether it points the right way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from alquimista_schema.errors import InvalidTarget

SPECIAL = ("head", "heads", "base")
LEGACY_ALL = "all"
_ID = r"[A-Za-z0-9_]{1,40}"
_GRAMMAR = re.compile(rf"(?P<name>{_ID})?(?:(?P<sign>[+-])(?P<steps>[0-9]{{1,4}}))?")
Direction = Literal["up", "down"]


@dataclass(frozen=True)
class Target:
    """A parsed target: ``text`` is what Alembic is given."""

    text: str
    name: str | None
    """The named revision (or head/heads/base); None for a bare ``+N``/``-N``."""
    steps: int
    """Signed relative steps from ``name`` (or from the current revision); 0 if absolute."""

    @property
    def relative(self) -> bool:
        return self.steps != 0 or self.name is None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(value: object, direction: Direction | None = None) -> Target:
    """Return ``value`` as a Target; raise InvalidTarget saying what is wrong.

    ``direction`` refuses a relative step that goes the other way (``upgrade -1``,
    ``downgrade +1``) and the ends of the history that cannot be reached that way
    (``base+N`` is fine, ``head+N`` and ``base-N`` never are).
    """
    if not isinstance(value, str) or not value:
        raise InvalidTarget(f"a target must be a revision id, head, base, +N or -N, not "
                            f"{_show(value)}")
    if value == LEGACY_ALL:
        if direction != "up":  # "every migration" only makes sense going up
            raise InvalidTarget("'all' (the legacy runner's word for head) only goes up: "
                                "name a revision, base, or -N")
        value = "head"
    match = _GRAMMAR.fullmatch(value)
    if match is None or not (match["name"] or match["sign"]):
        raise InvalidTarget(f"{_show(value)} is not a target: expected a revision id, head, "
                            "base, +N or -N (e.g. 017, head, +1, head-1)")
    name, sign, steps = match["name"], match["sign"], int(match["steps"] or 0)
    if sign and steps == 0:
        raise InvalidTarget(f"{_show(value)} moves nowhere: a relative step needs N >= 1")
    signed = -steps if sign == "-" else steps
    if (name in ("head", "heads") and signed > 0) or (name == "base" and signed < 0):
        raise InvalidTarget(f"{_show(value)} is past the end of the history")
    if direction == "up" and name is None and signed < 0:
        raise InvalidTarget(f"upgrade {value} goes backwards: use downgrade {value}")
    if direction == "down" and name is None and signed > 0:
        raise InvalidTarget(f"downgrade {value} goes forwards: use upgrade {value}")
    return Target(value, name, signed)


def parsed(value: str | Target, direction: Direction | None = None) -> Target:
    """``value`` as a Target: a door that parsed it already (the Lambda's protocol) hands
    the Target itself, so it is parsed once; a string is parsed here."""
    return value if isinstance(value, Target) else parse(value, direction)
