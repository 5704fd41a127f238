"""What each event action does: one small function per action, over the library's verbs.

The table ``HANDLERS`` is the protocol's dispatch (``protocol`` parses, this acts).
The verbs (command.py) are light to import: a cold no-op never loads Alembic. The
legacy actions (``run-migration``, ``list-migrations``) are adapters over the new ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from alquimista_schema import command
from alquimista_schema.aws.protocol import Request
from alquimista_schema.errors import ConfigurationError, DowngradeRefused, DriftDetected
from alquimista_schema.runtime.run import Run
from alquimista_schema.settings import Settings

if TYPE_CHECKING:
    from alquimista_schema.connect.secrets import Credentials

T = TypeVar("T")


class CredentialSource(Protocol):
    """Where an action's database credentials come from: a secret (SecretCache), or
    outside Lambda DATABASE_URL (runner.LocalUrl)."""

    fetches: int

    @property
    def cached(self) -> Credentials | None: ...

    def call(self, fn: Callable[[Credentials], T], *, deadline: float | None = None,
             on_refetch: Callable[[], None] | None = None) -> T: ...


class Host(Protocol):
    """What an action needs of the runner that answers the event."""

    settings: Settings
    secrets: CredentialSource | None
    actor: str
    log: Callable[..., None]


@dataclass
class Call:
    """One event being answered: who asks, by when, and how to reach the database."""

    runner: Host
    request: Request
    request_id: str
    deadline: float | None

    def log(self, step: str, **fields: Any) -> None:
        self.runner.log(step, self.request_id, **fields)

    def run(self, secret_version: str | None) -> Run:
        """The bounds of this run."""
        s = self.runner.settings
        lock_wait = s.lock_wait if s.lock_wait is not None else (
            float("inf") if self.deadline is not None else 60.0)  # then bounded by the deadline
        return Run.from_settings(
            s, request_id=self.request_id, actor=self.runner.actor, action=self.request.action,
            deadline=self.deadline, margin=s.margin, secret_version=secret_version,
            connect_timeout=s.connect_timeout, connect_budget=s.connect_budget,
            lock_wait=lock_wait, snapshot_wait=s.snapshot_wait)

    def on_database(self, fn: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
        """Call ``fn(url, run)``; fetch the secret again once if the credentials are refused."""
        secrets = self.runner.secrets
        if secrets is None:
            raise ConfigurationError(
                "DB_SECRET_ARN is not set in the function's environment (outside Lambda, "
                "DATABASE_URL may name the database instead)")

        def attempt(creds: Any) -> dict[str, Any]:
            self.log("secret.ready", database=creds.url.render_as_string(hide_password=True),
                     via=creds.source,
                     secret_version=creds.secret_version, fetches=secrets.fetches)
            return fn(creds.url, self.run(creds.secret_version))

        margin_deadline = None if self.deadline is None else \
            self.deadline - self.runner.settings.margin
        return secrets.call(attempt, deadline=margin_deadline, on_refetch=lambda: self.log(
            "secret.refetch", reason="authentication failed"))

    def on_applied(self, item: Any) -> None:
        self.log("revision.applied", revision=item.revision, duration_ms=item.duration_ms)


def moved(result: Any, verb: str | None = None, target: str | None = None) -> dict[str, Any]:
    """The answer's part that says what an upgrade or downgrade did (and any warning);
    with ``verb``, the ``message`` the CLI prints for it (``Result.summary``)."""
    body = {"status": "success" if result.applied else "noop",
            "from_revision": result.from_revision, "to_revision": result.to_revision,
            "applied": [asdict(a) for a in result.applied]}
    if verb is not None:
        body["message"] = result.summary(verb, target)
    if getattr(result, "snapshot", None):
        body["snapshot"] = result.snapshot
    for key in ("restore_point", "restorable_until"):  # ISO 8601, UTC
        when = getattr(result, key, None)
        if when is not None:
            body[key] = when.astimezone(UTC).isoformat()
    if getattr(result, "warnings", None):
        body["warnings"] = list(result.warnings)
    return body


# --- the actions ----------------------------------------------------------------------

def _upgrade(call: Call) -> dict[str, Any]:
    target = call.request.to
    accept = call.request.accept_checksums
    return call.on_database(lambda url, run: moved(command.upgrade(
        url, target, run=run, on_applied=call.on_applied, accept_checksums=accept),
        "applied", target.text))


def _run_migration(call: Call) -> dict[str, Any]:
    """Legacy: upgrade, answered with the old runner's keys."""
    body = _upgrade(call)
    named = call.request.named
    body["migration"] = named
    body["message"] = (f"Migration {named} executed successfully" if body["status"] == "success"
                       else f"Migration {named} was already applied; nothing to do")
    return body


def _downgrade(call: Call) -> dict[str, Any]:

    request = call.request
    if not request.allow_downgrade:
        raise DowngradeRefused('downgrade refused: add "allow_downgrade": true to the event '
                               "(it drops what later revisions added, data included)")
    target = request.to
    return call.on_database(lambda url, run: moved(command.downgrade(
        url, target, run=run, confirm=request.confirm, on_applied=call.on_applied),
        "reverted", target.text))


def _current(call: Call) -> dict[str, Any]:

    def read(url: Any, run: Any) -> dict[str, Any]:
        at = command.current(url, run=run)
        return {"status": "success", "from_revision": at, "to_revision": at, "revision": at,
                "is_head": at in command.heads()}
    return call.on_database(read)


def _history(call: Call) -> dict[str, Any]:

    return {"status": "success", "revisions": [asdict(r) for r in command.history()]}


def _plan(call: Call) -> dict[str, Any]:

    target = call.request.to

    def read(url: Any, run: Any) -> dict[str, Any]:
        plan = command.plan(url, target, run=run)
        return {"status": "success" if plan.pending else "noop",
                "from_revision": plan.from_revision, "to_revision": plan.to_revision,
                "pending": [asdict(p) for p in plan.pending], "sql": plan.sql,
                "lint": [asdict(f) for f in plan.findings],
                "effects": [e.as_dict() for e in plan.effects]}
    return call.on_database(read)


def _skipped(url: Any, run: Any, action: str) -> dict[str, Any] | None:
    """A read-only check (often scheduled) skips, rather than waits, while a migration runs."""
    holder = command.migration_running(url, run=run)
    if holder is None:
        return None
    return {"status": "noop", "skipped": True,
            "message": f"{action} skipped: a migration holds the lock ({holder}); it would "
                       "compare a schema in the middle of changing. The next run checks it"}


def _drift(call: Call) -> dict[str, Any]:
    def read(url: Any, run: Any) -> dict[str, Any]:
        skipped = _skipped(url, run, "drift")
        if skipped is not None:
            return skipped
        at = command.current(url, run=run)
        try:
            command.check(url, run=run)
            differences: list[str] = []
        except DriftDetected as exc:
            differences = exc.differences
            call.log("drift.found", differences=len(differences))  # the stack's alarm
        return {"status": "success", "from_revision": at, "to_revision": at,
                "drift": bool(differences), "differences": differences}
    return call.on_database(read)


def _verify(call: Call) -> dict[str, Any]:
    def read(url: Any, run: Any) -> dict[str, Any]:
        skipped = _skipped(url, run, "verify")
        if skipped is not None:
            return skipped
        found = command.verify(url, run=run)  # ChecksumMismatch: the answer's error
        return {"status": "success", "from_revision": found.at, "to_revision": found.at,
                "verified": True, "revisions": [
                    {"revision": c.revision, "status": c.status, "checksum": c.carried}
                    for c in found.checks]}
    return call.on_database(read)


def _adopt(call: Call) -> dict[str, Any]:

    def act(url: Any, run: Any) -> dict[str, Any]:
        try:
            result = command.adopt(url, dry_run=call.request.dry_run, run=run)
        except DriftDetected as exc:
            exc.args = (f"{exc}: " + "; ".join(exc.differences),)
            exc.progress = None
            raise
        return {"status": "success" if result.status == "adopted" else "noop",
                "adoption": result.status, "message": result.message,
                "from_revision": result.revision if result.status == "already_managed"
                else None, "to_revision": result.revision}
    return call.on_database(act)


def _list_migrations(call: Call) -> dict[str, Any]:
    """Legacy: what the bundle carries, and what the database has applied."""

    def read(url: Any, run: Any) -> dict[str, Any]:
        at = command.current(url, run=run)
        applied = command.applied(at)
        carried = command.history()
        return {"status": "success", "from_revision": at, "to_revision": at,
                "message": f"{len(carried)} migrations in the bundle, {len(applied)} applied",
                "executedMigrations": applied,
                "migrations": [{**asdict(r), "applied": r.revision in applied}
                               for r in carried]}
    return call.on_database(read)


HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {
    "upgrade": _upgrade, "run-migration": _run_migration, "downgrade": _downgrade,
    "current": _current, "history": _history, "plan": _plan, "drift": _drift,
    "verify": _verify,
    "adopt": _adopt, "list-migrations": _list_migrations,
}
