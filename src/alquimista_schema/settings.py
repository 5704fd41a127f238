"""Names read from the process environment, normalised once for every door."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar, cast

from alquimista_schema import durations
from alquimista_schema.errors import ConfigurationError

T = TypeVar("T")

ENVIRONMENTS = ("dev", "staging", "prod")
_ALIASES = {"production": "prod"}


def environment_name(value: str | None) -> str:
    """Return ``dev``, ``staging`` or ``prod`` for ``ENVIRONMENT`` (unset is dev); else raise.

    Case does not matter and ``production`` means ``prod``: a guard that only knew
    the exact string ``prod`` let ``Production`` through unguarded.
    """
    if value is None or not value.strip():
        return "dev"
    name = value.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in ENVIRONMENTS:
        raise ConfigurationError(
            f"ENVIRONMENT must be one of dev, staging, prod (or production), not {value!r}")
    return name


# --- the Lambda runner's settings (its function's environment) ---------------------

# A number of seconds: ASCII digits and a point only; float() would also take "\u0665"
# (an Arabic-Indic 5), "1e2", "1_0", "+5" and "inf".
SECONDS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")


def number_of_seconds(raw: str) -> float | None:
    """``raw`` (spaces around it aside) as a number of seconds, or None if it is not one
    (not durations.seconds: there a bare number is milliseconds, as PostgreSQL reads it)."""
    digits = SECONDS.fullmatch(raw.strip())
    return float(digits[0]) if digits else None


def _number(env: Mapping[str, str], name: str, default: float | None, low: float,
            high: float) -> float | None:
    """Read a number of seconds (ASCII digits, a decimal point) within [low, high], else
    BAD_CONFIG.

    A wrong value is never silently replaced by the default, and 0 is no "forever"
    (libpq's meaning for a connect timeout of 0).
    """
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    value = number_of_seconds(raw)
    if value is None or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number of seconds from {low:g} to "
                                 f"{high:g}, not {raw[:40]!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """Read a whole number within [low, high] (ASCII digits), else BAD_CONFIG."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not low <= int(raw) <= high:
        raise ConfigurationError(f"{name} must be a whole number from {low} to {high}, "
                                 f"not {raw[:40]!r}")
    return int(raw)


def _timeout(env: Mapping[str, str], name: str) -> str | None:
    """A timeout the function's environment sets (ALQUIMISTA_LOCK_TIMEOUT...), validated
    here so a malformed one is BAD_CONFIG at every event, and refused by the CDK check."""
    raw = env.get(name)
    return None if raw is None or not raw.strip() else durations.validate(name, raw)


# name -> (default, lowest, highest), in seconds
NUMBERS: dict[str, tuple[float | None, float, float]] = {
    "CONNECT_TIMEOUT_SECONDS": (10, 2, 300),
    "CONNECT_BUDGET_SECONDS": (45, 0, 900),
    "DEADLINE_MARGIN_SECONDS": (10, 1, 120),
    "LOCK_WAIT_SECONDS": (None, 0, 900),
    "SNAPSHOT_WAIT_SECONDS": (600, 1, 900),
}
# name -> (default, lowest, highest): whole numbers
COUNTS: dict[str, tuple[int, int, int]] = {
    "SNAPSHOT_KEEP": (5, 1, 100),
    # how often a revision that could not get its table lock is tried again (0: never)
    "LOCK_RETRIES": (5, 0, 20),
}
# name -> the Run's field: the migration transactions' timeouts, in the duration grammar
TIMEOUTS = {"ALQUIMISTA_LOCK_TIMEOUT": "lock_timeout",
            "ALQUIMISTA_STATEMENT_TIMEOUT": "statement_timeout"}
AUTH_MODES = ("password", "iam")
IAM_NEEDS = ("DB_HOST", "DB_NAME", "DB_USER", "DB_SSLROOTCERT")
_CLUSTER_ID = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")


def snapshot_setting(env: Mapping[str, str], environment: str,
                     wanted: bool | None = None) -> tuple[bool, str | None]:
    """Whether to snapshot the cluster before an upgrade applies anything, and which.

    ``wanted`` (the CLI's --snapshot/--no-snapshot) wins over SNAPSHOT_BEFORE_UPGRADE,
    which is true or false; unset, it is true in prod. The cluster is DB_CLUSTER_IDENTIFIER,
    never guessed from a host name; an upgrade that needs a snapshot without it applies
    nothing (SNAPSHOT_FAILED).
    """
    raw = (env.get("SNAPSHOT_BEFORE_UPGRADE") or "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigurationError(f"SNAPSHOT_BEFORE_UPGRADE must be true or false, not "
                                 f"{env['SNAPSHOT_BEFORE_UPGRADE'][:40]!r}")
    on = wanted if wanted is not None else (raw == "true" if raw else environment == "prod")
    cluster = (env.get("DB_CLUSTER_IDENTIFIER") or "").strip() or None
    if cluster and not _CLUSTER_ID.fullmatch(cluster):
        raise ConfigurationError("DB_CLUSTER_IDENTIFIER must be an Aurora cluster identifier "
                                 f"(letters, digits, hyphens), not {cluster[:70]!r}")
    return on, cluster


def auth_mode(env: Mapping[str, str]) -> str:
    """``password`` (the secret's, the default) or ``iam`` (a signed token, no password)."""
    mode = (env.get("DB_AUTH") or "password").strip().lower()
    if mode not in AUTH_MODES:
        raise ConfigurationError(f"DB_AUTH must be password or iam, not {env['DB_AUTH'][:40]!r}")
    missing = [name for name in IAM_NEEDS if mode == "iam" and not env.get(name)]
    if missing:
        raise ConfigurationError(f"DB_AUTH=iam needs {', '.join(missing)} (IAM tokens are "
                                 "accepted over verify-full TLS only)")
    return mode


@dataclass(frozen=True)
class Settings:
    """The function's configuration, from its environment, validated."""

    secret_id: str | None
    environment: str = "dev"
    connect_timeout: int = 10
    connect_budget: float = 45.0
    margin: float = 10.0
    lock_wait: float | None = None
    lint_policy: str = "warn"
    table_policy: str = "off"
    """TABLE_POLICY: refuse (enforce), warn about or ignore (off) a revision that blocks
    writes while it rewrites or scans a large table (default: enforce in prod)."""
    snapshot: bool = False
    cluster: str | None = None
    snapshot_wait: float = 600.0
    auth: str = "password"
    snapshot_keep: int = 5
    """How many of the runner's own snapshots of the cluster to keep (SNAPSHOT_KEEP)."""
    lock_timeout: str | None = None
    """ALQUIMISTA_LOCK_TIMEOUT, validated (None: the default)."""
    statement_timeout: str | None = None
    """ALQUIMISTA_STATEMENT_TIMEOUT, validated (None: the default)."""
    lock_retries: int = 5
    """LOCK_RETRIES: a revision's tries after a lock failure (runtime/lockwaits.py)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings; raise ConfigurationError naming every value that is wrong."""
        settings, problems = cls.read(env)
        if problems:
            raise ConfigurationError("; ".join(problems.values()))
        return settings

    @classmethod
    def problems(cls, env: Mapping[str, str]) -> dict[str, str]:
        """Each variable the runner would refuse, with why (empty when all are right).

        The one rule for both callers: the function at run time (``from_env``) and the
        CDK app at synth time (deploy/cdk), which refuses what the function would.
        """
        return cls.read(env)[1]

    @classmethod
    def read(cls, env: Mapping[str, str]) -> tuple[Settings, dict[str, str]]:
        """The settings (defaults where a value is wrong) and the problems, by variable."""
        problems: dict[str, str] = {}

        def check(name: str, read: Callable[[], T], default: T) -> T:
            try:
                return read()
            except ConfigurationError as exc:
                problems[name] = str(exc)
                return default

        environment = check("ENVIRONMENT", lambda: environment_name(env.get("ENVIRONMENT")),
                            "dev")
        tables = check("TABLE_POLICY", lambda: _policy("TABLE_POLICY", env.get("TABLE_POLICY"),
                                                      environment, "off"), "off")
        policy = check("LINT_POLICY", lambda: _lint_policy(env.get("LINT_POLICY"), environment),
                       "warn")
        numbers: dict[str, float | None] = {}
        for name, (default, low, high) in NUMBERS.items():
            numbers[name] = check(name, partial(_number, env, name, default, low, high),
                                  default)
        counts = {name: check(name, partial(_count, env, name, *limits), limits[0])
                  for name, limits in COUNTS.items()}
        timeouts = {field: check(name, partial(_timeout, env, name), None)
                    for name, field in TIMEOUTS.items()}
        unset: tuple[bool, str | None] = (False, None)
        snapshot, cluster = check("SNAPSHOT_BEFORE_UPGRADE",
                                  lambda: snapshot_setting(env, environment), unset)
        auth = check("DB_AUTH", lambda: auth_mode(env), "password")
        # NUMBERS gives all but LOCK_WAIT_SECONDS a default, so those are never None.
        given = cast(dict[str, float], numbers)
        return cls(secret_id=env.get("DB_SECRET_ARN") or None, environment=environment,
                   lint_policy=policy, table_policy=tables,
                   connect_timeout=int(given["CONNECT_TIMEOUT_SECONDS"]),
                   connect_budget=float(given["CONNECT_BUDGET_SECONDS"]),
                   margin=float(given["DEADLINE_MARGIN_SECONDS"]),
                   lock_wait=numbers["LOCK_WAIT_SECONDS"], snapshot=snapshot, cluster=cluster,
                   snapshot_wait=float(given["SNAPSHOT_WAIT_SECONDS"]),
                   auth=auth, snapshot_keep=counts["SNAPSHOT_KEEP"],
                   lock_retries=counts["LOCK_RETRIES"],
                   lock_timeout=timeouts["lock_timeout"],
                   statement_timeout=timeouts["statement_timeout"]), problems


def _policy(name: str, value: str | None, environment: str, otherwise: str) -> str:
    """``enforce``, ``warn`` or ``off`` (any case); unset is enforce in prod, else
    ``otherwise``."""
    policy = value or ("enforce" if environment == "prod" else otherwise)
    if policy.lower() not in ("enforce", "warn", "off"):
        raise ConfigurationError(f"{name} must be enforce, warn or off, not {policy[:40]!r}")
    return policy.lower()


def _lint_policy(value: str | None, environment: str) -> str:
    """``enforce``, ``warn`` or ``off`` (any case); unset is enforce in prod, else warn."""
    return _policy("LINT_POLICY", value, environment, "warn")


LOCAL_KEYS = ("ENVIRONMENT", "LINT_POLICY", "TABLE_POLICY", "SNAPSHOT_BEFORE_UPGRADE",
              "DB_CLUSTER_IDENTIFIER", "SNAPSHOT_KEEP", "LOCK_RETRIES", *TIMEOUTS)


def local(env: Mapping[str, str], snapshot: bool | None = None) -> Settings:
    """What a local door (the CLI, plain ``alembic``) reads from its environment, as the
    Lambda reads it: the environment, the policies, the snapshot before an upgrade
    (``snapshot``: the CLI's --snapshot/--no-snapshot, which wins) and how many to keep, the
    lock retries and the migration timeouts (ALQUIMISTA_LOCK_TIMEOUT...). Its connection
    bounds and credentials come from its own options, never from the function's variables.

    Precedence, at every door: the door's own option (``--lock-timeout``, ``-x
    lock_timeout=``), else the environment read here, else alembic.ini (plain ``alembic``
    only), else the default (durations.DEFAULTS, the fields' defaults here).
    """
    read = Settings.from_env({k: v for k, v in env.items() if k in LOCAL_KEYS})
    return read if snapshot is None else replace(read, snapshot=snapshot)
