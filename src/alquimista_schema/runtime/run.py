"""What a run is: who runs it, within which bounds, and how far it got.

Light on purpose (no SQLAlchemy, no Alembic): the verbs module imports it at
module level, and the cold no-op of the Lambda must stay cheap.
"""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from alquimista_schema import durations
from alquimista_schema.errors import ConfigurationError

DEFAULT_CONNECT_TIMEOUT = 10  # seconds, as database.DEFAULT_CONNECT_TIMEOUT


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
    """enforce: refuse revisions with unwaived squawk findings (see lint.py)."""
    environment: str = "dev"
    """dev, staging or prod (see settings.environment_name); prod guards destructive verbs."""

    def __post_init__(self) -> None:
        if self.lint_policy not in ("enforce", "warn", "off"):
            raise ConfigurationError(
                f"lint policy must be enforce, warn or off, not {self.lint_policy!r}")
        for name in ("lock_timeout", "statement_timeout"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, durations.validate(name, value))

    @property
    def application_name(self) -> str:
        return f"alquimista-schema/{self.request_id}"[:63]

    def remaining(self) -> float | None:
        """Seconds left before the margin, or None without a deadline."""
        if self.deadline is None:
            return None
        return self.deadline - self.margin - time.monotonic()

    def bounded(self, seconds: float) -> float:
        """Return ``seconds`` cut to the time left (never negative)."""
        remaining = self.remaining()
        return seconds if remaining is None else max(min(seconds, remaining), 0.0)

    def connection(self, url: Any, *, adopt: Any = None) -> Any:
        """Open a connection for this run (or adopt the fast path's open one)."""
        from alquimista_schema.connect.database import connect  # deferred: pulls in SQLAlchemy

        return connect(url, connect_timeout=self.connect_timeout,
                       application_name=self.application_name, budget=self.connect_budget,
                       deadline=None if self.deadline is None else self.deadline - self.margin,
                       adopt=adopt)


@dataclass(frozen=True)
class Applied:
    """One revision applied (or undone) with how long it took."""

    revision: str
    description: str
    duration_ms: float


@dataclass(frozen=True)
class Result:
    """What an upgrade, downgrade or stamp did."""

    from_revision: str | None
    to_revision: str | None
    applied: list[Applied]
    warnings: list[str] = field(default_factory=list)
    """Problems that did not change the outcome (e.g. the audit row could not be written)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    """How far a run under the lock got; the audit row and any error's progress read it."""

    from_revision: str | None = None
    to_revision: str | None = None
    applied: list[Applied] = field(default_factory=list)
    changed: bool = False
    """Something was written besides applied revisions (a stamp, an adoption)."""
    audit_errors: bool = True
    """False while a refusal must leave no trace at all, not even an audit row."""
    warnings: list[str] = field(default_factory=list)

    def at(self, revision: str | None) -> None:
        """Record where the database starts (and, so far, ends)."""
        self.from_revision = self.to_revision = revision

    def result(self) -> Result:
        return Result(self.from_revision, self.to_revision, list(self.applied),
                      list(self.warnings))
