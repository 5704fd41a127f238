"""The package's exceptions: one base, a few kinds, each with a stable code.

Every message says what happened and what to do. None carries a password or a
full DSN: URLs are rendered with the password masked before they reach a message.
"""

from __future__ import annotations


class SchemaError(Exception):
    """Base error of alquimista-schema."""

    code = "ERROR"
    progress: object = None
    """What was done before the error (a ``runtime.run.Result``), when anything was."""

    @property
    def details(self) -> list[str]:
        """The items the message sums up (each difference, each revision), one line each."""
        return []


class ConfigurationError(SchemaError):
    """Something the caller must supply or fix before anything can run."""

    code = "BAD_CONFIG"


class MissingURL(ConfigurationError):
    """No database URL was given."""

    code = "MISSING_URL"


class UnknownRevision(SchemaError):
    """A revision named by the caller is not in this package's history."""

    code = "UNKNOWN_REVISION"


class UnknownDatabaseRevision(SchemaError):
    """The database is at a revision these revision files do not have."""

    code = "UNKNOWN_DB_REVISION"

    def __init__(self, revision: str, head: str | None) -> None:
        super().__init__(
            f"the database is at revision {revision!r}, which these revision files do not "
            f"have (their head is {head!r}): it was migrated by a newer release, or from "
            "another branch; run that release or branch (or, to overwrite the version table, "
            "`stamp <revision> --purge`)")
        self.revision, self.head = revision, head

    def on_local_database(self) -> UnknownDatabaseRevision:
        """The same, said of the local database, where the fitting advice differs."""
        local = UnknownDatabaseRevision(self.revision, self.head)
        local.args = (
            f"the local database is at revision {self.revision!r}, which these revision "
            f"files do not have (their head is {self.head!r}): a revision file was removed, "
            f"or it was migrated from another branch. Check out the branch that has "
            f"{self.revision!r}, or start the local database over: `alquimista-schema dev-db "
            "remove --yes`, then `upgrade`",)
        return local


class SeveralDatabaseRevisions(SchemaError):
    """alembic_version holds more than one row, and this project's history is one line."""

    code = "MULTIPLE_DB_REVISIONS"

    def __init__(self, revisions: tuple[str, ...]) -> None:
        super().__init__(
            f"the database's alembic_version holds {len(revisions)} revisions "
            f"({', '.join(revisions)}), and this project's history has one head: it was "
            "edited by hand or migrated from another branch. Nothing was changed; look at "
            "the schema, then record the one revision it is at with "
            "`stamp <revision> --purge`")
        self.revisions = revisions


class DatabaseUnreachable(SchemaError):
    """No connection could be opened to the database host."""

    code = "DB_UNREACHABLE"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class AuthenticationFailed(SchemaError):
    """The server refused the credentials."""

    code = "AUTH_FAILED"


class MigrationFailed(SchemaError):
    """A revision failed; its transaction was rolled back (``committed``: the statements
    of it that had already committed, and so stayed)."""

    code = "MIGRATION_FAILED"

    def __init__(self, message: str, *, revision: str | None = None,
                 committed: list[str] | None = None, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.revision = revision
        self.committed = committed or []
        self.sqlstate = sqlstate

    @property
    def details(self) -> list[str]:
        return self.committed


class DriftDetected(SchemaError):
    """The database (or the models) differ from what the revisions produce."""

    code = "DRIFT"

    def __init__(self, message: str, differences: list[str]) -> None:
        super().__init__(message)
        self.differences = differences

    @property
    def details(self) -> list[str]:
        return self.differences


class ChecksumMismatch(SchemaError):
    """An applied revision was edited after it was applied, or is not carried here."""

    code = "CHECKSUM_MISMATCH"

    def __init__(self, message: str, mismatches: list[str]) -> None:
        super().__init__(message)
        self.mismatches = mismatches

    @property
    def details(self) -> list[str]:
        return self.mismatches


class NotAdopted(SchemaError):
    """The database holds the package's objects but no version: it must be adopted first."""

    code = "NOT_ADOPTED"


class InvokeFailed(SchemaError):
    """The deployed function could not be invoked, or failed without an answer."""

    code = "INVOKE_FAILED"


class DevDatabaseError(SchemaError):
    """The local development PostgreSQL could not be prepared or started."""

    code = "DEV_DB"


class SecretUnavailable(SchemaError):
    """The database secret could not be fetched or is not usable."""

    code = "SECRET_UNAVAILABLE"


class LockTimeout(SchemaError):
    """Another run holds the migration lock and did not release it in time; or a revision
    could not get its table lock, however often it was tried (``blockers``: who held it)."""

    code = "LOCK_TIMEOUT"

    def __init__(self, message: str, *, blockers: list[str] | None = None,
                 revision: str | None = None) -> None:
        super().__init__(message)
        self.blockers, self.revision = blockers or [], revision

    @property
    def details(self) -> list[str]:
        return self.blockers


class LintRefused(SchemaError):
    """A revision has unwaived lint findings and the policy is to enforce."""

    code = "LINT_REFUSED"


class BusyTableRefused(SchemaError):
    """A revision would block writes while it rewrites or scans a large table, unwaived,
    and the table policy is to enforce (runtime/effects.py)."""

    code = "BUSY_TABLE_REFUSED"

    def __init__(self, message: str, statements: list[str]) -> None:
        super().__init__(message)
        self.statements = statements

    @property
    def details(self) -> list[str]:
        return self.statements


class Interrupted(SchemaError):
    """Ctrl-C or SIGTERM stopped the run; the revision under way was rolled back."""

    code = "INTERRUPTED"


class PermissionDenied(SchemaError):
    """The database role lacks a privilege an operation outside a revision needs."""

    code = "PERMISSION_DENIED"


class ReadOnlyReplica(SchemaError):
    """The connection reached a reader (a standby), which cannot be migrated."""

    code = "READ_ONLY_REPLICA"


class DeadlineExceeded(SchemaError):
    """Not enough time left (of the Lambda's budget) to run the next step safely."""

    code = "DEADLINE"


class SnapshotFailed(SchemaError):
    """The cluster snapshot taken before an upgrade could not be made in time."""

    code = "SNAPSHOT_FAILED"


class SnapshotPending(SnapshotFailed):
    """The snapshot is still being created when the run may wait no longer: nothing was
    applied, and the next run waits for the same snapshot (so a caller may retry)."""

    code = "SNAPSHOT_PENDING"


class DowngradeRefused(SchemaError):
    """A downgrade was asked for without the required confirmation."""

    code = "DOWNGRADE_REFUSED"


class BadEvent(SchemaError):
    """The event is malformed: nothing was done."""

    code = "BAD_EVENT"


class InvalidTarget(BadEvent):
    """A revision target that is not well formed (see targets.py): nothing was done."""


class NotAtHead(SchemaError):
    """A comparison with the models needs the database at head, and it is not."""

    code = "NOT_AT_HEAD"


# --- building the Lambda bundle (alquimista_schema.tooling.bundle) ---------------------------


class BundleError(SchemaError):
    """The bundle could not be built."""

    code = "BUNDLE"


class ProjectNotFound(BundleError):
    """No alquimista-schema checkout where the bundle was asked to build from."""

    code = "NO_PROJECT"


class PackageBuildFailed(BundleError):
    """The package's own wheel could not be built from the checkout."""

    code = "PACKAGE_BUILD"


class NoWheelForTarget(BundleError):
    """A dependency publishes no wheel for the Lambda's Python and architecture."""

    code = "NO_WHEEL"

    def __init__(self, message: str, *, requirement: str) -> None:
        super().__init__(message)
        self.requirement = requirement
