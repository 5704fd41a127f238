"""Turn a Lambda event into an answer: the runner's protocol, new and legacy.

See the README's "Event protocol" table. Every answer is a JSON-serialisable dict
with ``status`` (success, noop or error), ``action``, ``from_revision``,
``to_revision``, ``applied``, ``duration_ms`` and ``request_id``; errors add
``error`` (what happened and what to do) and ``error_code``. Malformed events are
answered ``BAD_EVENT`` before anything is fetched or connected.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from alquimista_schema.errors import (
    AuthenticationFailed,
    BadEvent,
    DowngradeRefused,
    DriftDetected,
    SchemaError,
)

ACTIONS = ("upgrade", "current", "history", "plan", "drift", "downgrade", "adopt",
           "run-migration", "list-migrations")
_KEYS = {
    "upgrade": {"target"}, "plan": {"target"}, "run-migration": {"target"},
    "downgrade": {"target", "allow_downgrade", "confirm"},
    "current": set(), "history": set(), "drift": set(), "list-migrations": set(),
    "adopt": {"dry_run"},
}
MAX_EVENT_BYTES = 4096
_TARGET = re.compile(r"^(?:[A-Za-z0-9_]{1,40}|[A-Za-z0-9_]{0,40}[+-][0-9]{1,4})$")
LEGACY = ("run-migration", "list-migrations")


@dataclass(frozen=True)
class Request:
    action: str
    target: str | None = None
    allow_downgrade: bool = False
    confirm: str | None = None
    dry_run: bool = False


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(event: object) -> Request:
    """Validate ``event`` strictly; raise BadEvent saying what is wrong."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise BadEvent(f"the event must be a JSON object, not {type(event).__name__}")
    try:
        size = len(json.dumps(event, default=str))
    except (TypeError, ValueError, RecursionError):
        raise BadEvent("the event is not plain JSON") from None
    if size > MAX_EVENT_BYTES:
        raise BadEvent(f"the event is {size} bytes; at most {MAX_EVENT_BYTES} are accepted")
    action = event.get("action", "upgrade")
    if not isinstance(action, str) or action not in ACTIONS:
        raise BadEvent(f"unknown action {_short(action)}; expected one of {', '.join(ACTIONS)}")
    unknown = sorted(_short(k) for k in event if k != "action" and k not in _KEYS[action])
    if unknown:
        allowed = ", ".join(sorted(_KEYS[action])) or "none"
        raise BadEvent(f"unexpected key(s) for {action}: {', '.join(unknown)} "
                       f"(allowed: {allowed})")
    target = event.get("target")
    if target is not None and (not isinstance(target, str) or not _TARGET.fullmatch(target)):
        raise BadEvent(f"target must be a revision id, head, base or +N/-N, not {_short(target)}")
    if action in ("run-migration", "downgrade") and target is None:
        raise BadEvent(f"{action} needs a target")
    allow = event.get("allow_downgrade", False)
    if not isinstance(allow, bool):
        raise BadEvent("allow_downgrade must be true or false")
    confirm = event.get("confirm")
    if confirm is not None and not isinstance(confirm, str):
        raise BadEvent("confirm must be a string repeating the target revision")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadEvent("dry_run must be true or false")
    if action in ("upgrade", "plan") and target is None:
        target = "head"
    return Request(action, target, allow, confirm, dry_run)


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


@dataclass
class Settings:
    """The function's configuration, from its environment."""

    secret_id: str | None
    environment: str = "dev"
    connect_timeout: int = 10
    connect_budget: float = 45.0
    margin: float = 10.0
    lock_wait: float | None = None
    lint_policy: str = "warn"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def number(name: str, default: float) -> float:
            raw = env.get(name)
            try:
                return float(raw) if raw else default
            except ValueError:
                return default

        wait = env.get("LOCK_WAIT_SECONDS")
        environment = (env.get("ENVIRONMENT") or "dev").lower()
        return cls(
            secret_id=env.get("DB_SECRET_ARN") or None,
            environment=environment,
            lint_policy=(env.get("LINT_POLICY")
                         or ("enforce" if environment == "prod" else "warn")).lower(),
            connect_timeout=int(number("CONNECT_TIMEOUT_SECONDS", 10)),
            connect_budget=number("CONNECT_BUDGET_SECONDS", 45),
            margin=number("DEADLINE_MARGIN_SECONDS", 10),
            lock_wait=float(wait) if wait and wait.replace(".", "", 1).isdigit() else None,
        )


class Runner:
    """Answers events; keeps the secret (and its client) across warm invocations."""

    def __init__(self, settings: Settings, *, env: Mapping[str, str] | None = None,
                 client_factory: Callable[[], Any] | None = None,
                 log: Callable[..., None] | None = None, actor: str = "lambda") -> None:
        from alquimista_schema.credentials import SecretCache, secrets_client

        self.settings = settings
        self.log = log or JsonLog()
        self.actor = actor
        self.secrets = (SecretCache(settings.secret_id, client_factory or secrets_client, env)
                        if settings.secret_id else None)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Runner:
        env = os.environ if env is None else env
        name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        return cls(Settings.from_env(env), env=env,
                   actor=f"lambda:{name}" if name else "lambda")

    def handle(self, event: object, *, request_id: str,
               remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
        """Answer ``event``; never raise for a problem the caller can act on."""
        started = time.monotonic()
        deadline = started + remaining_ms() / 1000 if remaining_ms is not None else None
        raw = {} if event is None else event  # the null event means {}: upgrade to head
        action = raw.get("action", "upgrade") if isinstance(raw, Mapping) else None
        action_name = action if isinstance(action, str) and action in ACTIONS else "invalid"
        try:
            request = parse(event)
            self.log("event.accepted", request_id, action=request.action, target=request.target)
            body = self._dispatch(request, request_id, deadline)
        except SchemaError as exc:
            body = {"status": "error", "error": str(exc), "error_code": exc.code}
            if exc.progress is not None:  # revisions committed before the failure
                body.update({k: v for k, v in _moved(exc.progress).items() if k != "status"})
            if action_name in LEGACY:
                body["message"] = ("Migration execution failed" if action_name == "run-migration"
                                   else "Listing migrations failed")
            self.log("event.failed", request_id, action=action_name, error_code=exc.code,
                     error=str(exc))
        except Exception as exc:  # a bug: still answer, in the protocol's shape
            body = {"status": "error", "error_code": "INTERNAL_ERROR",
                    "error": f"unexpected {type(exc).__name__}: {str(exc)[:300]} (a bug: "
                             "report it with the request id)"}
            self.log("event.failed", request_id, action=action_name, error_code="INTERNAL_ERROR",
                     error=body["error"])
        answer = {"status": "success", "action": action_name, "from_revision": None,
                  "to_revision": None, "applied": [], **body,
                  "duration_ms": round((time.monotonic() - started) * 1000, 1),
                  "request_id": request_id}
        self.log("event.answered", request_id, action=action_name, status=answer["status"],
                 duration_ms=answer["duration_ms"])
        return answer

    # --- actions --------------------------------------------------------------------

    def _dispatch(self, request: Request, request_id: str,
                  deadline: float | None) -> dict[str, Any]:
        if request.action in ("upgrade", "run-migration") and request.target in ("head", "all"):
            fast = self._already_at_head(request, request_id)
            if fast is not None:
                return fast
        from alquimista_schema import migrate  # deferred: a no-op never loads Alembic

        if request.action == "history":
            return {"revisions": [asdict(r) for r in migrate.history()],
                    "status": "success"}
        if request.action == "downgrade":
            self._authorise_downgrade(request)

        def run_for(action: str, version: str | None) -> migrate.Run:
            lock_wait = self.settings.lock_wait
            run = migrate.Run(request_id=request_id, actor=self.actor, action=action,
                              deadline=deadline, margin=self.settings.margin,
                              secret_version=version,
                              connect_timeout=self.settings.connect_timeout,
                              connect_budget=self.settings.connect_budget,
                              lint_policy=self.settings.lint_policy)
            if lock_wait is not None:
                run.lock_wait = lock_wait
            elif deadline is not None:
                run.lock_wait = float("inf")  # bounded by the deadline instead
            return run

        def on_applied(item: migrate.Applied) -> None:
            self.log("revision.applied", request_id, revision=item.revision,
                     duration_ms=item.duration_ms)

        def call(fn: Callable[[Any, migrate.Run], dict[str, Any]]) -> dict[str, Any]:
            url, version = self._credentials(request_id)
            try:
                return fn(url, run_for(request.action, version))
            except AuthenticationFailed:
                # The password may have been rotated since this container cached it.
                self.log("secret.refetch", request_id, reason="authentication failed")
                url, version = self._credentials(request_id, refresh=True)
                return fn(url, run_for(request.action, version))

        if request.action in ("upgrade", "run-migration"):
            target = request.target or "head"
            target = "head" if target == "all" and request.action == "run-migration" else target

            def do_upgrade(url: Any, run: migrate.Run) -> dict[str, Any]:
                result = migrate.upgrade(url, target, run=run, on_applied=on_applied)
                return _moved(result)

            body = call(do_upgrade)
            if request.action == "run-migration":
                body["migration"] = request.target
                body["message"] = (f"Migration {request.target} executed successfully"
                                   if body["status"] == "success" else
                                   f"Migration {request.target} was already applied; "
                                   "nothing to do")
            return body
        if request.action == "downgrade":
            target = request.target or ""
            return call(lambda url, run: _moved(migrate.downgrade(url, target, run=run,
                                                                  on_applied=on_applied)))
        if request.action == "current":
            def do_current(url: Any, run: migrate.Run) -> dict[str, Any]:
                at = migrate.current(url, run=run)
                return {"status": "success", "from_revision": at, "to_revision": at,
                        "revision": at, "is_head": at in migrate.heads()}
            return call(do_current)
        if request.action == "plan":
            target = request.target or "head"

            def do_plan(url: Any, run: migrate.Run) -> dict[str, Any]:
                plan = migrate.plan(url, target, run=run)
                return {"status": "success" if plan.pending else "noop",
                        "from_revision": plan.from_revision, "to_revision": plan.to_revision,
                        "pending": [asdict(p) for p in plan.pending], "sql": plan.sql,
                        "lint": [asdict(f) for f in plan.findings]}
            return call(do_plan)
        if request.action == "drift":
            def do_drift(url: Any, run: migrate.Run) -> dict[str, Any]:
                at = migrate.current(url, run=run)
                try:
                    migrate.check(url, run=run)
                    differences: list[str] = []
                except DriftDetected as exc:
                    differences = exc.differences
                return {"status": "success", "from_revision": at, "to_revision": at,
                        "drift": bool(differences), "differences": differences}
            return call(do_drift)
        if request.action == "adopt":
            def do_adopt(url: Any, run: migrate.Run) -> dict[str, Any]:
                from alquimista_schema.adopt import adopt

                try:
                    result = adopt(url, dry_run=request.dry_run, run=run)
                except DriftDetected as exc:
                    exc.args = (f"{exc}: " + "; ".join(exc.differences),)
                    exc.progress = None
                    raise
                status = "success" if result.status == "adopted" else "noop"
                return {"status": status, "adoption": result.status, "message": result.message,
                        "from_revision": None if result.status != "already_managed"
                        else result.revision, "to_revision": result.revision}
            try:
                return call(do_adopt)
            except DriftDetected as exc:
                return {"status": "error", "error": str(exc), "error_code": exc.code,
                        "differences": exc.differences}
        # list-migrations: what the bundle carries, and what the database has applied.
        def do_list(url: Any, run: migrate.Run) -> dict[str, Any]:
            at = migrate.current(url, run=run)
            applied = migrate.applied_revisions(migrate.script_directory(), at)
            carried = migrate.history()
            return {"status": "success", "from_revision": at, "to_revision": at,
                    "message": f"{len(carried)} migrations in the bundle, "
                               f"{len(applied)} applied",
                    "executedMigrations": applied,
                    "migrations": [{**asdict(r), "applied": r.revision in applied}
                                   for r in carried]}
        return call(do_list)

    def _already_at_head(self, request: Request, request_id: str) -> dict[str, Any] | None:
        """Answer noop in one query when the database is plainly at head, else None."""
        from alquimista_schema import fastpath

        url, _ = self._credentials(request_id)
        head = fastpath.at_head(url, connect_timeout=self.settings.connect_timeout,
                                application_name=f"alquimista-schema/{request_id}")
        if head is None:
            return None
        self.log("upgrade.noop", request_id, revision=head, fast_path=True)
        body: dict[str, Any] = {"status": "noop", "from_revision": head, "to_revision": head,
                                "applied": []}
        if request.action == "run-migration":
            body.update(migration=request.target,
                        message=f"Migration {request.target} was already applied; "
                                "nothing to do")
        return body

    def _authorise_downgrade(self, request: Request) -> None:
        if not request.allow_downgrade:
            raise DowngradeRefused('downgrade refused: add "allow_downgrade": true to the event '
                                   "(it drops what later revisions added, data included)")
        if self.settings.environment == "prod" and request.confirm != request.target:
            raise DowngradeRefused(
                f'downgrade refused in prod: repeat the target revision as "confirm": '
                f'"{request.target}"')

    def _credentials(self, request_id: str, *, refresh: bool = False) -> tuple[Any, str | None]:
        from alquimista_schema.database import safe_url
        from alquimista_schema.errors import ConfigurationError

        if self.secrets is None:
            raise ConfigurationError("DB_SECRET_ARN is not set in the function's environment")
        creds = self.secrets.get(refresh=refresh)
        self.log("secret.ready", request_id, database=safe_url(creds.url),
                 secret_version=creds.secret_version, fetches=self.secrets.fetches)
        return creds.url, creds.secret_version


def _moved(result: Any) -> dict[str, Any]:
    return {"status": "success" if result.applied else "noop",
            "from_revision": result.from_revision, "to_revision": result.to_revision,
            "applied": [asdict(a) for a in result.applied]}
