"""The Lambda door's runner: an event in, a plain dict out, never an exception.

Every answer is a JSON-serialisable dict with ``status`` (success, noop or error),
``action``, ``from_revision``, ``to_revision``, ``applied``, ``duration_ms`` and
``request_id``; errors add ``error`` (what happened and what to do) and ``error_code``.
The protocol is protocol.py; each action is one function of actions.py's table.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

from alquimista_schema.aws.actions import HANDLERS, Call, CredentialSource, moved
from alquimista_schema.aws.protocol import ACTIONS, LEGACY, action_name, parse
from alquimista_schema.connect import dsn
from alquimista_schema.connect.secrets import Credentials, SecretCache
from alquimista_schema.errors import ConfigurationError, SchemaError
from alquimista_schema.settings import Settings

__all__ = ["JsonLog", "LocalUrl", "Runner"]
# What an error's details are called in the answer, by its code.
_DETAILS = {"DRIFT": "differences", "CHECKSUM_MISMATCH": "mismatches",
            "MIGRATION_FAILED": "committed", "LOCK_TIMEOUT": "blockers"}
T = TypeVar("T")
assert set(HANDLERS) == set(ACTIONS)  # every action answered, no handler orphaned


def _named(event: object) -> str:
    """The action for the answer, whatever the event is (a Mapping's own ``get`` may raise:
    the parse then says what is wrong with it)."""
    try:
        return action_name(event)
    except Exception:
        return "invalid"


def _deadline(started: float, remaining_ms: Callable[[], int] | None) -> float | None:
    """When the invocation ends (None: no context, or one that cannot say)."""
    try:
        return started + remaining_ms() / 1000 if remaining_ms is not None else None
    except Exception:
        return None


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


class LocalUrl:
    """Outside Lambda only: the database named by DATABASE_URL, in place of a secret.

    So the real handler runs on a developer's machine (``python -m lambda_entry``). On
    Lambda (AWS_LAMBDA_FUNCTION_NAME is set) DATABASE_URL is never read.
    """

    def __init__(self, url: str) -> None:
        self.fetches = 0
        self.cached: Credentials | None = Credentials(dsn.parse(url), None, "DATABASE_URL")

    def call(self, fn: Callable[[Credentials], T], *, deadline: float | None = None,
             on_refetch: Callable[[], None] | None = None) -> T:
        assert self.cached is not None
        return fn(self.cached)


class Runner:
    """Answers events; keeps the secret (and its client) across warm invocations."""

    def __init__(self, settings_: Settings | ConfigurationError, *,
                 env: Mapping[str, str] | None = None,
                 client_factory: Callable[..., Any] | None = None,
                 log: Callable[..., None] | None = None, actor: str = "lambda") -> None:
        self.config_error = settings_ if isinstance(settings_, ConfigurationError) else None
        self.settings = settings_ if isinstance(settings_, Settings) else Settings(None)
        self.log = log or JsonLog()
        self.actor = actor
        self.secrets: CredentialSource | None = (
            SecretCache(self.settings.secret_id, client_factory, env)
            if self.settings.secret_id else None)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Runner:
        """Build the runner; a wrong setting is answered (BAD_CONFIG) at every event."""
        env = os.environ if env is None else env
        name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        try:
            read: Settings | ConfigurationError = Settings.from_env(env)
        except ConfigurationError as exc:
            read = exc
        runner = cls(read, env=env, actor=f"lambda:{name}" if name else "lambda")
        if runner.settings.auth == "iam" and runner.config_error is None:
            from alquimista_schema.connect import iam

            runner.secrets = iam.IamCredentials(iam.url_from_env(
                env, iam.signer(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))))
        local = env.get("DATABASE_URL")
        if runner.secrets is None and local and not name:
            try:
                runner.secrets = LocalUrl(local)
            except ConfigurationError as exc:
                runner.config_error = exc
            runner.actor = "local"
        return runner

    def handle(self, event: object, *, request_id: str,
               remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
        """Answer ``event``; never raise."""
        started = time.monotonic()
        action, deadline = _named(event), _deadline(started, remaining_ms)
        try:
            if self.config_error is not None:
                raise self.config_error
            request = parse(event)
            self.log("event.accepted", request_id, action=request.action,
                     target=request.target and request.target.text)
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
        if exc.details:  # each difference, each edited revision
            body[_DETAILS.get(exc.code, "details")] = exc.details
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
        # A Dsn's password is fixed; an IAM URL signs a new token at each read (none to mask).
        password = cached.url.password if cached is not None \
            and isinstance(cached.url, dsn.Dsn) else None
        if password:
            for form in {str(password), quote(str(password), safe=""),
                         quote_plus(str(password))}:
                text = text.replace(form, "***")
        return text
