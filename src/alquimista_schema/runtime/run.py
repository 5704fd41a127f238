"""What a run is: who runs it, within which bounds, and how far it got.

Values only (no SQLAlchemy, no Alembic, no connection): the verbs import it at
module level, and the Lambda's cold no-op must stay cheap.
"""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from alquimista_schema import durations
from alquimista_schema.errors import ConfigurationError
from alquimista_schema.settings import Settings
from alquimista_schema.targets import Target

DEFAULT_CONNECT_TIMEOUT = 10  # seconds, as connect.database.DEFAULT_CONNECT_TIMEOUT
LINT_POLICIES = ("enforce", "warn", "off")
# The Run fields every door's Settings give (settings.Settings has each, by the same name).
FROM_SETTINGS = ("environment", "lint_policy", "table_policy", "snapshot", "cluster",
                 "snapshot_keep", "lock_timeout", "statement_timeout", "lock_retries")


def default_actor() -> str:
    """Name who runs a change when the caller does not say (user@host)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class Run:
    """Who runs a change, and within which bounds."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    actor: str = field(default_factory=default_actor)
    lock_wait: float = 60.0
    """Seconds to wait for another run's migration lock."""
    deadline: float | None = None
    """``time.monotonic()`` by which all work must be over (a Lambda's end)."""
    margin: float = 10.0
    """Seconds kept in hand before the deadline to roll back and answer."""
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    secret_version: str | None = None
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT
    connect_budget: float = 0.0
    action: str = "upgrade"
    lint_policy: str = "warn"
    """enforce: refuse revisions with unwaived squawk findings (see script/lint.py)."""
    table_policy: str = "off"
    """enforce: refuse a revision that blocks writes while it rewrites or scans a large
    table, unless it waives that (BUSY_TABLE_WAIVER); see runtime/effects.py."""
    environment: str = "dev"
    """dev, staging or prod (see settings.environment_name); prod guards destructive verbs."""
    snapshot: bool = False
    """Snapshot the cluster before an upgrade applies anything (see runtime/snapshot.py)."""
    cluster: str | None = None
    """The Aurora cluster's identifier (DB_CLUSTER_IDENTIFIER), never guessed."""
    snapshot_wait: float = 600.0
    """Seconds to wait for the snapshot to become available (never past the deadline)."""
    snapshot_keep: int = 5
    """How many of the runner's own snapshots of the cluster a successful upgrade keeps."""
    lock_retries: int = 5
    """How often a revision that could not get its table lock is tried again (0: never)."""

    def __post_init__(self) -> None:
        for name in ("lint_policy", "table_policy"):
            if getattr(self, name) not in LINT_POLICIES:
                raise ConfigurationError(f"{name.replace('_', ' ')} must be enforce, warn or "
                                         f"off, not {getattr(self, name)!r}")
        for name in durations.DEFAULTS:  # a library caller's text; a door's is read already
            value = getattr(self, name)
            if value is not None and not isinstance(value, durations.Duration):
                setattr(self, name, durations.validate(name, value))

    @classmethod
    def from_settings(cls, read: Settings, **door: Any) -> Run:
        """The one way a door builds its run: the settings it read (validated once), then
        its own values (a CLI option, the Lambda's deadline); a value of None is not given,
        so the setting stands."""
        values: dict[str, Any] = {name: getattr(read, name) for name in FROM_SETTINGS}
        values.update({name: value for name, value in door.items() if value is not None})
        return cls(**values)

    def timeouts(self) -> dict[str, str]:
        """The migration transactions' timeouts: the run's, else the defaults."""
        return {name: getattr(self, name) or default
                for name, default in durations.DEFAULTS.items()}

    @property
    def application_name(self) -> str:
        return f"alquimista-schema/{self.request_id}"[:63]

    @property
    def connect_deadline(self) -> float | None:
        """The ``time.monotonic()`` by which a connection must be open (the margin kept)."""
        return None if self.deadline is None else self.deadline - self.margin

    def connect_options(self) -> dict[str, Any]:
        """The bounds of this run's connections (``connect.database.connect``'s options)."""
        return {"connect_timeout": self.connect_timeout, "budget": self.connect_budget,
                "application_name": self.application_name, "deadline": self.connect_deadline}

    def remaining(self) -> float | None:
        """Seconds left before the margin, or None without a deadline."""
        if self.deadline is None:
            return None
        return self.deadline - self.margin - time.monotonic()

    def bounded(self, seconds: float) -> float:
        """Return ``seconds`` cut to the time left (never negative)."""
        remaining = self.remaining()
        return seconds if remaining is None else max(min(seconds, remaining), 0.0)


@dataclass(frozen=True)
class Change:
    """One change of revision, as a door asks for it (see runtime/skeleton.py)."""

    action: str
    """upgrade, downgrade or stamp."""
    target: Target
    confirm: str | None = None
    """The target repeated: what a destructive change needs in prod."""
    purge: bool = False
    """stamp only: replace whatever the version table holds."""
    accept_checksums: bool = False
    """upgrade only: record the new checksums of revisions edited since they were applied."""
    on_applied: Callable[[Applied], None] | None = None

    @property
    def destructive(self) -> str | None:
        """What a prod refusal calls this change; None when it destroys nothing."""
        if self.action == "downgrade":
            return "downgrade"
        return "stamp --purge" if self.action == "stamp" and self.purge else None


@dataclass(frozen=True)
class Applied:
    """One revision applied (or undone) with how long it took."""

    revision: str
    description: str
    duration_ms: float

    def line(self) -> str:
        """How every door shows it: id, duration, description."""
        return f"  {self.revision:<16} {self.duration_ms:>9.1f} ms  {self.description}"


@dataclass(frozen=True)
class Result:
    """What an upgrade, downgrade or stamp did."""

    from_revision: str | None
    to_revision: str | None
    applied: list[Applied]
    warnings: list[str] = field(default_factory=list)
    """Problems that did not change the outcome (e.g. the audit row could not be written)."""
    snapshot: str | None = None
    """The cluster snapshot taken (or reused) before the first revision, if one was; in an
    error's progress, the one that was being made."""
    restore_point: datetime | None = None
    """The database server's time just before the first revision of an upgrade: a
    point-in-time restore to it undoes the upgrade."""
    restorable_until: datetime | None = None
    """Until when the restore point can be restored to (its cluster's backup retention)."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Each failed attempt at a revision that was tried again (runtime/lockwaits.py)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def restore_line(self) -> str | None:
        """Where a point-in-time restore takes the database back to before this upgrade."""
        if self.restore_point is None:
            return None
        line = f"restore point: {self.restore_point.astimezone(UTC).isoformat()}"
        if self.restorable_until is not None:
            line += f" (restorable until {self.restorable_until.astimezone(UTC).isoformat()})"
        return line

    def summary(self, verb: str, target: str | None = None) -> str:
        """Say in one line what was done (``verb``: applied, reverted), or why nothing was."""
        if self.applied:
            return (f"{verb} {len(self.applied)} revision(s): {self.from_revision or 'base'} "
                    f"-> {self.to_revision or 'base'}")
        at = self.to_revision or "base"
        if verb == "applied" and target not in (None, "head", "heads", at) and \
                not target.startswith(("+", "-")):
            return (f"nothing to do: the database is at {at}, already past {target} "
                    "(use downgrade to go back)")
        return f"nothing to do: the database is already at {at}"


@dataclass
class Progress:
    """How far a run under the lock got; the audit row and any error's progress read it."""

    from_revision: str | None = None
    to_revision: str | None = None
    applied: list[Applied] = field(default_factory=list)
    changed: bool = False
    """Something was written besides applied revisions (a stamp, an adoption)."""
    traced: bool = True
    """False inside :meth:`untraced`: a refusal there leaves no trace, not even an audit row."""
    warnings: list[str] = field(default_factory=list)
    snapshot: str | None = None
    restore_point: datetime | None = None
    restorable_until: datetime | None = None
    on_applied: Callable[[Applied], None] | None = None
    on_recorded: Callable[[], None] | None = None
    """Called after each revision is recorded (the audit row follows the run)."""
    stop_signal: int | None = None
    """The signal (SIGINT, SIGTERM) that asked the run to stop (runtime/interrupts.py)."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Each revision attempt that failed on a lock (runtime/lockwaits.py)."""

    def at(self, revision: str | None) -> None:
        """Record where the database starts (and, so far, ends)."""
        self.from_revision = self.to_revision = revision

    def record(self, applied: Applied, landed: str | None) -> None:
        """Record one revision committed, the database now at ``landed`` (None: base)."""
        self.applied.append(applied)
        self.to_revision = landed
        if self.on_applied is not None:
            self.on_applied(applied)
        if self.on_recorded is not None:
            self.on_recorded()

    @contextmanager
    def untraced(self) -> Iterator[None]:
        """Refusals raised inside leave no trace at all: nothing was changed, nothing audited.

        Not reset when one propagates: the audit, which runs after, must see it.
        """
        self.traced = False
        yield
        self.traced = True

    def result(self) -> Result:
        return Result(self.from_revision, self.to_revision, list(self.applied),
                      list(self.warnings), self.snapshot, self.restore_point,
                      self.restorable_until, list(self.attempts))
