"""The runner's event protocol: what an event may say, checked once, normalised.

See the README's "Event protocol" table. :func:`parse` turns an event into a
``Request`` or raises BadEvent saying what is wrong, before anything is fetched or
connected. The legacy runner's events (``run-migration``, ``list-migrations``,
``"target": "all"``) are accepted as they were.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alquimista_schema import targets
from alquimista_schema.errors import BadEvent

__all__ = ["ACTIONS", "LEGACY", "MAX_EVENT_BYTES", "Request", "action_name", "parse"]


@dataclass(frozen=True)
class Request:
    """An event, validated and normalised by :func:`parse`."""

    action: str
    target: targets.Target | None = None
    """Parsed once, here (the legacy ``all`` is ``head``); None for actions without one."""
    allow_downgrade: bool = False
    confirm: str | None = None
    dry_run: bool = False
    named: str | None = None
    """The target as the event wrote it (the legacy answer repeats it)."""
    accept_checksums: bool = False

    @property
    def to(self) -> targets.Target:
        """The target of an action that has one: :func:`parse` sets it for upgrade, plan
        (``head`` when none is named), run-migration and downgrade."""
        if self.target is None:
            raise BadEvent(f"{self.action} needs a target")
        return self.target


_KEYS: dict[str, set[str]] = {
    "upgrade": {"target", "accept_checksums"}, "plan": {"target"}, "run-migration": {"target"},
    "downgrade": {"target", "allow_downgrade", "confirm"},
    "current": set(), "history": set(), "drift": set(), "verify": set(),
    "list-migrations": set(),
    "adopt": {"dry_run"},
}
ACTIONS = tuple(_KEYS)
LEGACY = ("run-migration", "list-migrations")
_DIRECTION: dict[str, targets.Direction] = {
    "upgrade": "up", "plan": "up", "run-migration": "up", "downgrade": "down"}
MAX_EVENT_BYTES = 4096


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _flag(event: Mapping[Any, Any], key: str) -> bool:
    value = event.get(key, False)
    if not isinstance(value, bool):
        raise BadEvent(f"{key} must be true or false")
    return value


def _body(event: object) -> Mapping[Any, Any]:
    """Return the event as a small plain-JSON mapping, or raise BadEvent."""
    if event is None:
        return {}  # the null event means {}: upgrade to head
    if not isinstance(event, Mapping):
        raise BadEvent(f"the event must be a JSON object, not {type(event).__name__}")
    try:
        size = len(json.dumps(event, default=str))
    except (TypeError, ValueError, RecursionError):
        raise BadEvent("the event is not plain JSON") from None
    if size > MAX_EVENT_BYTES:
        raise BadEvent(f"the event is {size} bytes; at most {MAX_EVENT_BYTES} are accepted")
    return event


def parse(event: object) -> Request:
    """Validate ``event`` strictly and normalise it; raise BadEvent saying what is wrong."""
    body = _body(event)
    action = body.get("action", "upgrade")
    if not isinstance(action, str) or action not in _KEYS:
        raise BadEvent(f"unknown action {_short(action)}; expected one of {', '.join(ACTIONS)}")
    unknown = sorted(_short(k) for k in body if k != "action" and k not in _KEYS[action])
    if unknown:
        allowed = ", ".join(sorted(_KEYS[action])) or "none"
        raise BadEvent(f"unexpected key(s) for {action}: {', '.join(unknown)} "
                       f"(allowed: {allowed})")
    named = body.get("target")
    if named is None and action in ("run-migration", "downgrade"):
        raise BadEvent(f"{action} needs a target")
    target = None
    if named is not None or action in ("upgrade", "plan"):
        target = targets.parse("head" if named is None else named, _DIRECTION[action])
    confirm = body.get("confirm")
    if confirm is not None and not isinstance(confirm, str):
        raise BadEvent("confirm must be a string repeating the target revision")
    return Request(action, target, _flag(body, "allow_downgrade"), confirm,
                   _flag(body, "dry_run"), named if isinstance(named, str) else None,
                   _flag(body, "accept_checksums"))


def action_name(event: object) -> str:
    """The action an event asked for, for the answer (``invalid`` when it is none)."""
    action = event.get("action", "upgrade") if isinstance(event, Mapping) else (
        "upgrade" if event is None else None)
    return action if isinstance(action, str) and action in _KEYS else "invalid"
