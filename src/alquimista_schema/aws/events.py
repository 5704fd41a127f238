"""Turn a Lambda event into an answer: the runner's protocol, new and legacy.

See the README's "Event protocol" table. Every answer is a JSON-serialisable dict
with ``status`` (success, noop or error), ``action``, ``from_revision``,
``to_revision``, ``applied``, ``duration_ms`` and ``request_id``; errors add
``error`` (what happened and what to do) and ``error_code``. Malformed events are
answered ``BAD_EVENT`` before anything is fetched or connected.

This module is the protocol only: :func:`parse` normalises an event once, and
``actions.HANDLERS`` maps each action to one small function over the library's
verbs (the legacy actions are adapters over the new ones).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from alquimista_schema import targets
from alquimista_schema.aws.actions import HANDLERS, Call, Request, moved
from alquimista_schema.errors import BadEvent, ConfigurationError, DriftDetected, SchemaError
from alquimista_schema.settings import Settings

__all__ = ["ACTIONS", "LEGACY", "MAX_EVENT_BYTES", "JsonLog", "Request", "Runner", "Settings",
           "action_name", "parse"]

_KEYS: dict[str, set[str]] = {
    "upgrade": {"target"}, "plan": {"target"}, "run-migration": {"target"},
    "downgrade": {"target", "allow_downgrade", "confirm"},
    "current": set(), "history": set(), "drift": set(), "list-migrations": set(),
    "adopt": {"dry_run"},
}
ACTIONS = tuple(_KEYS)
LEGACY = ("run-migration", "list-migrations")
_DIRECTION: dict[str, targets.Direction] = {
    "upgrade": "up", "plan": "up", "run-migration": "up", "downgrade": "down"}
MAX_EVENT_BYTES = 4096
assert set(HANDLERS) == set(ACTIONS)  # every action answered, no handler orphaned


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
        target = targets.parse("head" if named is None else named, _DIRECTION[action]).text
    confirm = body.get("confirm")
    if confirm is not None and not isinstance(confirm, str):
        raise BadEvent("confirm must be a string repeating the target revision")
    return Request(action, target, _flag(body, "allow_downgrade"), confirm,
                   _flag(body, "dry_run"), named if isinstance(named, str) else None)


def action_name(event: object) -> str:
    """The action an event asked for, for the answer (``invalid`` when it is none)."""
    action = event.get("action", "upgrade") if isinstance(event, Mapping) else (
        "upgrade" if event is None else None)
    return action if isinstance(action, str) and action in _KEYS else "invalid"


class JsonLog:
    """One JSON line per step, to stdout (CloudWatch), without touching ``logging``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def __call__(self, step: str, request_id: str, **fields: Any) -> None:
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "ERROR" if "error_code" in fields else "INFO",
                "logger": "alquimista_schema", "step": step, "request_id": request_id,
                **fields}
        stream = self.stream or sys.stdout
        stream.write(json.dumps(line, default=str) + "\n")
        stream.flush()


class Runner:
    """Answers events; keeps the secret (and its client) across warm invocations."""

    def __init__(self, settings_: Settings | ConfigurationError, *,
                 env: Mapping[str, str] | None = None,
                 client_factory: Callable[..., Any] | None = None,
                 log: Callable[..., None] | None = None, actor: str = "lambda") -> None:
        from alquimista_schema.connect.secrets import SecretCache, secrets_client

        self.config_error = settings_ if isinstance(settings_, ConfigurationError) else None
        self.settings = settings_ if isinstance(settings_, Settings) else Settings(None)
        self.log = log or JsonLog()
        self.actor = actor
        self.secrets = (SecretCache(self.settings.secret_id, client_factory or secrets_client,
                                    env) if self.settings.secret_id else None)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Runner:
        """Build the runner; a wrong setting is answered (BAD_CONFIG) at every event."""
        env = os.environ if env is None else env
        name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        try:
            read: Settings | ConfigurationError = Settings.from_env(env)
        except ConfigurationError as exc:
            read = exc
        return cls(read, env=env, actor=f"lambda:{name}" if name else "lambda")

    def handle(self, event: object, *, request_id: str,
               remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
        """Answer ``event``; never raise."""
        started = time.monotonic()
        deadline = started + remaining_ms() / 1000 if remaining_ms is not None else None
        action = action_name(event)
        try:
            if self.config_error is not None:
                raise self.config_error
            request = parse(event)
            self.log("event.accepted", request_id, action=request.action, target=request.target)
            body = HANDLERS[request.action](Call(self, request, request_id, deadline))
        except SchemaError as exc:
            body = self._error(exc, action, request_id)
        except Exception as exc:  # a bug: still answer, in the protocol's shape
            body = self._bug(exc, action, request_id)
        answer = {"status": "success", "action": action, "from_revision": None,
                  "to_revision": None, "applied": [], **body,
                  "duration_ms": round((time.monotonic() - started) * 1000, 1),
                  "request_id": request_id}
        self.log("event.answered", request_id, action=action, status=answer["status"],
                 duration_ms=answer["duration_ms"])
        return answer

    def _error(self, exc: SchemaError, action: str, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "error": str(exc), "error_code": exc.code}
        if exc.progress is not None:  # revisions committed before the failure
            body.update({k: v for k, v in moved(exc.progress).items() if k != "status"})
        if isinstance(exc, DriftDetected):
            body["differences"] = exc.differences
        if action in LEGACY:
            body["message"] = ("Migration execution failed" if action == "run-migration"
                               else "Listing migrations failed")
        self.log("event.failed", request_id, action=action, error_code=exc.code, error=str(exc))
        return body

    def _bug(self, exc: Exception, action: str, request_id: str) -> dict[str, Any]:
        error = (f"unexpected {type(exc).__name__}: {self.mask(str(exc))[:300]} (a bug: report "
                 "it with the request id)")
        self.log("event.failed", request_id, action=action, error_code="INTERNAL_ERROR",
                 error=error, traceback=self.mask(traceback.format_exc()))
        return {"status": "error", "error_code": "INTERNAL_ERROR", "error": error}

    def mask(self, text: str) -> str:
        """Remove the cached password (raw and URL-encoded) from ``text``."""
        from urllib.parse import quote, quote_plus

        cached = self.secrets.cached if self.secrets is not None else None
        password = cached.url.password if cached is not None else None
        if password:
            for form in {str(password), quote(str(password), safe=""),
                         quote_plus(str(password))}:
                text = text.replace(form, "***")
        return text
