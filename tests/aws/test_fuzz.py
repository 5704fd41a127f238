"""Property-based fuzzing of the Lambda event protocol (hypothesis).

Three properties, over at least 2,000 generated events in all. Each test counts the events
it really exercised (examples ``assume`` rejected are not counted), prints the count and
asserts its share; the shares add up to at least ``MIN_TOTAL`` (checked at import).

1. ``protocol.parse``, pure (no database): for anything at all -- JSON values of every type,
   Python objects no JSON decoder makes (bytes, sets, tuples, non-string keys, integers past
   the 4,300-digit limit), huge strings, unicode (RTL marks, emoji, combining marks, NUL;
   never surrogates), nesting deeper than the recursion limit, SQL in ``target``, unknown
   keys, valid-looking events with random targets and flags of random types -- it returns a
   ``Request`` or raises ``BadEvent``, never anything else, and what it accepts is what the
   README's protocol allows.

2. The real handler (the ``invoke`` fixture: moto's Secrets Manager over HTTP, TLS, the
   password-checked role) over a *guarded* database: at revision 017, with rows in every
   table. Every answer is a JSON-serialisable dict with the common keys, ``status`` in
   {success, noop, error}, ``error``/``error_code`` strings on error, ``BAD_EVENT`` exactly
   when ``parse`` refuses the event; the handler never raises. **Events that would
   legitimately change that database are not sent to it**: those ``parse`` accepts as
   ``upgrade``, ``run-migration``, or ``downgrade`` with ``allow_downgrade: true`` (and the
   ``null`` event, which means "upgrade to head") are rejected with ``assume`` and exercised
   by property 3 instead. Everything else is sent: malformed events, ``current``,
   ``history``, ``plan``, ``drift``, ``list-migrations``, downgrades without the flag, and
   ``adopt`` in both modes -- the database is already managed, and adopting a managed
   database is documented to answer noop and touch nothing, which the final check holds it
   to. After fuzzing, the database must be exactly as before: at 017, the same rows in every
   table (count and an md5 of the contents, the audit table included: a run that changes
   something or fails adds a row there), the same schema (``introspect.snapshot``), no
   advisory lock left behind.

3. Events that do change a database (``upgrade``, ``run-migration``, ``downgrade`` with the
   flag, ``adopt``, with fuzzed targets) go to the real handler over a *scratch* database of
   their own, which starts at 017 and wanders. Same answer contract, plus consistency with
   the database after each event: success or noop means the database is at
   ``to_revision`` (and noop means it did not move); an error means it is at
   ``to_revision`` when something was applied before the failure, and unchanged otherwise.
   At the end it is upgraded to head and must show no drift.

Bugs this fuzzing found, now fixed and kept as regression tests at the bottom: a
relative target past either end of the chain (``head+1``, ``017+3``, ``lead_ingestion-1``)
raised a bare ``AssertionError`` out of Alembic's revision map through the handler; a
target with a trailing newline (``"+1\\n"``) was accepted; the ``null`` event was answered
``"action": "invalid"``.

Examples are not stored (``database=None``), and Hypothesis's caches (unicode tables, collected
constants) go to a temporary folder while this module runs, so nothing is written to the
checkout.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.aws import protocol
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import BadEvent
from alquimista_schema.runtime import audit
from alquimista_schema.schema import introspect
from alquimista_schema.script import directory
from tests.support.helpers import Invoke, secret_for
from tests.support.revisions import HEAD, REVISIONS, after

# --- how many events ----------------------------------------------------------------

PARSE_EVENTS = 1200
READ_ONLY_EVENTS = 650
CHANGING_EVENTS = 180
MIN_TOTAL = 2000
assert PARSE_EVENTS + READ_ONLY_EVENTS + CHANGING_EVENTS >= MIN_TOTAL



@pytest.fixture(autouse=True, scope="module")
def _hypothesis_storage_outside_the_checkout(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)  # back to Hypothesis's own default


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much],
                    print_blob=True)


# --- the protocol, as the README states it (an oracle independent of protocol._KEYS) ---

ALLOWED_KEYS: dict[str, set[str]] = {
    "upgrade": {"target", "accept_checksums"}, "plan": {"target"}, "run-migration": {"target"},
    "downgrade": {"target", "allow_downgrade", "confirm"},
    "current": set(), "history": set(), "drift": set(), "verify": set(),
    "list-migrations": set(), "adopt": {"dry_run"},
}
assert set(ALLOWED_KEYS) == set(protocol.ACTIONS)
COMMON = {"status", "action", "from_revision", "to_revision", "applied", "duration_ms",
          "request_id"}
CHAIN = REVISIONS
PAST_017 = f"017+{len(after('017')) + 1}"  # one step past the head
# Every code the package's exceptions carry (the README table, plus BAD_CONFIG and
# UNKNOWN_DB_REVISION); INTERNAL_ERROR is deliberately absent: it would be a bug.
ERROR_CODES = {"BAD_EVENT", "UNKNOWN_REVISION", "SECRET_UNAVAILABLE", "DB_UNREACHABLE",
               "AUTH_FAILED", "LOCK_TIMEOUT", "MIGRATION_FAILED", "READ_ONLY_REPLICA",
               "DOWNGRADE_REFUSED", "DEADLINE", "DRIFT", "NOT_AT_HEAD", "BAD_CONFIG",
               "UNKNOWN_DB_REVISION", "NOT_ADOPTED", "CHECKSUM_MISMATCH", "SNAPSHOT_FAILED"}
# Every boolean of a parsed event (allow_downgrade, dry_run, and any added later).
BOOLEAN_KEYS = [f.name for f in dataclasses.fields(protocol.Request) if f.type == "bool"]
TARGET_GRAMMAR = re.compile(r"[A-Za-z0-9_]{1,40}|[A-Za-z0-9_]{0,40}[+-][0-9]{1,4}")
# Relative targets with a named base: the ones Alembic's revision map can assert on.

# --- strategies ---------------------------------------------------------------------

SQL_INJECTION = [
    "017; DROP TABLE leads", "' OR 1=1 --", "head; DROP TABLE dry_run_log",
    "017'); DELETE FROM leads; --", "$$; TRUNCATE leads; $$", "017 UNION SELECT 1",
    "1; SELECT pg_sleep(10)", "'; COPY leads TO PROGRAM 'id'; --", "017\"; --",
    "head/*", "017--", "${jndi:ldap://x/a}", "{{7*7}}", "%s%s%n", "../../etc/passwd",
]
UNICODE = [
    "", " ", "\x00", "017\x00", "\x00head", "\u202eRTL\u202c", "\u202e910", "مرحبا",
    "שלום", "\u200f017", "🦄🔥", "👨\u200d👩\u200d👧\u200d👦", "e\u0301", "\ufeffhead",
    "\uff28\uff25\uff21\uff24",  # fullwidth HEAD
    "\u0660\u0661\u0667", "\uff10\uff11\uff17",  # Arabic-Indic, fullwidth 017
    "017\n", "head\n", "+1\n", "\t017", "017 ", "HEAD", "Head", "ção",
    "\r\n", "\u2028", "\U0010fffd", "a" * 41, "0" * 40,
]
REVISION_LIKE = [
    "head", "heads", "base", *REVISIONS, "lead", "all",
    "999",
    "+1", "-1", "+2", "-2", "+4", "-4", "+0", "017+1", "019-1", "018-2", "head-1", "head-3",
    "heads-2", "base+1", "base+2", "lead_ingestion+1", "0", "01", "017+0", "_", "_+1",
    # walk off the chain (the known AssertionError), a few of them:
    "head+1", f"{HEAD}+1", PAST_017, "lead_ingestion-1", "base-1",
]

SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),
    st.text(max_size=20), st.sampled_from(UNICODE))
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def _repeat(piece: str, times: int) -> str:
    return piece * times


def _nest(leaf: Any, depth: int, shape: str) -> Any:
    value = leaf
    for level in range(depth):
        if shape == "list" or (shape == "mixed" and level % 2):
            value = [value]
        else:
            value = {"action" if shape == "action" else "x": value}
    return value


HUGE: st.SearchStrategy[str] = st.builds(
    _repeat, st.text(min_size=1, max_size=4) | st.sampled_from(["🦄", "\x00", "\u202e", "a"]),
    st.integers(min_value=500, max_value=6000))
DEEP: st.SearchStrategy[Any] = st.builds(
    _nest, SCALARS, st.integers(min_value=1, max_value=3000),
    st.sampled_from(["list", "dict", "mixed", "action"]))
TARGETS: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(REVISION_LIKE),
    st.sampled_from(REVISION_LIKE),
    st.from_regex(r"[A-Za-z0-9_]{0,6}[+-][0-9]{1,4}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True),
    st.sampled_from(SQL_INJECTION),
    st.sampled_from(UNICODE),
    st.text(max_size=50),
    HUGE, SCALARS, JSON)
FLAGS: st.SearchStrategy[Any] = st.one_of(
    st.booleans(), st.booleans(), st.sampled_from([0, 1, "true", "false", "yes", None, 1.0]),
    SCALARS, JSON)
FIELD: dict[str, st.SearchStrategy[Any]] = {
    "target": TARGETS, "allow_downgrade": FLAGS, "confirm": TARGETS, "dry_run": FLAGS,
    "accept_checksums": FLAGS}
STRANGE_KEYS = st.one_of(
    st.sampled_from(["Action", "ACTION", "action ", "target ", "", "\x00", "foo", "dryRun",
                     "allowDowngrade", "migration", "__proto__", "🦄", "\u202eaction"]),
    st.text(max_size=30))


@st.composite
def valid_looking(draw: st.DrawFn, actions: tuple[str, ...] = protocol.ACTIONS) -> Any:
    """An event with a real action, some of its own keys, and sometimes a stray key."""
    action = draw(st.sampled_from(actions))
    event: dict[str, Any] = {"action": action}
    for key in sorted(ALLOWED_KEYS[action]):
        if draw(st.booleans()):
            event[key] = draw(FIELD[key])
    if draw(st.integers(min_value=0, max_value=7)) == 0:
        event[draw(STRANGE_KEYS | st.sampled_from(sorted(FIELD)))] = draw(JSON)
    if action == "upgrade" and draw(st.booleans()):
        del event["action"]  # the default action
    return event


JSON_EVENTS: st.SearchStrategy[Any] = st.one_of(
    valid_looking(), valid_looking(), valid_looking(),
    st.dictionaries(STRANGE_KEYS | st.sampled_from(["action", *sorted(FIELD)]), JSON,
                    max_size=6),
    st.dictionaries(st.text(max_size=3), HUGE, min_size=1, max_size=2),
    st.fixed_dictionaries({"action": st.sampled_from(protocol.ACTIONS)},
                          optional={"target": DEEP, "confirm": DEEP, "blob": HUGE}),
    st.fixed_dictionaries({"action": DEEP | HUGE | JSON}),
    DEEP,
    JSON,  # top-level lists, strings, numbers, booleans, null
)


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque \x00 🦄>"


PYTHON_ONLY: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([b"upgrade", bytearray(b"x"), (1, 2), {1, 2}, frozenset(), Decimal("1.5"),
                     datetime.now(UTC), _Opaque(), 10 ** 5000, -(10 ** 4400), math.nan,
                     complex(1, 2), range(3), Ellipsis, NotImplemented, object, print]),
    st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.floats(),
                              st.tuples(st.integers()), st.frozensets(st.integers(), max_size=2),
                              st.binary(max_size=4)),
                    JSON, min_size=1, max_size=3),
    st.builds(types.MappingProxyType, st.dictionaries(st.text(max_size=8), JSON, max_size=3)),
    st.builds(dict, action=st.sampled_from(protocol.ACTIONS),
              target=st.one_of(st.just(10 ** 5000), st.binary(), st.tuples(st.text()),
                               st.sets(st.integers(), max_size=3))),
    st.builds(dict, action=st.sampled_from(protocol.ACTIONS),
              **{"target": st.sampled_from(REVISION_LIKE)}, extra=st.just({(1, 2): "x"})),
)
ANY_EVENT: st.SearchStrategy[Any] = st.one_of(JSON_EVENTS, JSON_EVENTS, PYTHON_ONLY)


# --- oracles --------------------------------------------------------------------------

def parsed(event: Any) -> protocol.Request | None:
    try:
        return protocol.parse(event)
    except BadEvent:
        return None


def changes_database(request: protocol.Request | None, event: Any) -> bool:
    """Would this (accepted) event legitimately change a database at 017?"""
    if request is None:
        return False
    if event is None or request.action in ("upgrade", "run-migration"):
        return True
    return request.action == "downgrade" and request.allow_downgrade


def check_answer(event: Any, answer: Any) -> protocol.Request | None:
    """The contract every answer keeps; return the parsed request (None when refused)."""
    assert isinstance(answer, dict)
    json.dumps(answer)  # plain JSON, no default= needed
    assert set(answer) >= COMMON, sorted(answer)
    assert answer["status"] in ("success", "noop", "error")
    assert answer["from_revision"] is None or isinstance(answer["from_revision"], str)
    assert answer["to_revision"] is None or isinstance(answer["to_revision"], str)
    assert isinstance(answer["applied"], list)
    for item in answer["applied"]:
        assert set(item) == {"revision", "description", "duration_ms"}
        assert item["revision"] in CHAIN
    assert isinstance(answer["duration_ms"], float | int)
    assert answer["duration_ms"] >= 0
    assert isinstance(answer["request_id"], str)
    assert answer["request_id"]
    request = parsed(event)
    if answer["status"] == "error":
        assert isinstance(answer["error"], str)
        assert answer["error"]
        assert isinstance(answer["error_code"], str)
        assert answer["error_code"] in ERROR_CODES, answer["error_code"]
    else:
        assert "error_code" not in answer
        assert "error" not in answer
    if request is None:
        assert (answer["status"], answer["error_code"]) == ("error", "BAD_EVENT"), answer
        assert answer["action"] in (*protocol.ACTIONS, "invalid")
        assert answer["applied"] == []
    else:
        assert answer.get("error_code") != "BAD_EVENT", answer
        if event is not None:  # the null event: see test_known_bug_null_event_answer_...
            assert answer["action"] == request.action
    return request


# --- 1. the parser --------------------------------------------------------------------

def test_parse_returns_a_request_or_raises_bad_event() -> None:
    count = 0

    @_settings(PARSE_EVENTS)
    @given(event=ANY_EVENT)
    def check(event: Any) -> None:
        nonlocal count
        refusal: BadEvent | None = None
        try:
            request = protocol.parse(event)
        except BadEvent as exc:
            refusal = exc
        if refusal is not None:
            assert refusal.code == "BAD_EVENT"
            assert str(refusal)  # says what is wrong
        else:
            assert isinstance(request, protocol.Request)
            assert request.action in protocol.ACTIONS
            body: Mapping[Any, Any] = {} if event is None else event
            assert isinstance(body, Mapping)
            assert set(body) <= {"action"} | ALLOWED_KEYS[request.action]
            assert body.get("action", "upgrade") == request.action
            assert len(json.dumps(body, default=str)) <= protocol.MAX_EVENT_BYTES
            assert request.target is None or isinstance(request.target.text, str)
            if request.target is not None:
                # (a trailing newline slips through: test_known_bug_trailing_newline...)
                assert TARGET_GRAMMAR.fullmatch(request.target.text.removesuffix("\n"))
            if request.action in ("upgrade", "plan"):
                assert request.target is not None
            if request.action in ("run-migration", "downgrade"):
                assert request.named == body["target"]  # as written; target is normalised
                assert request.target is not None
                assert request.target.text == ("head" if body["target"] == "all"
                                               else body["target"])
            assert isinstance(request.allow_downgrade, bool)
            assert isinstance(request.dry_run, bool)
            for flag in BOOLEAN_KEYS:  # a JSON boolean, taken as written
                assert body.get(flag, False) is getattr(request, flag)
            assert request.confirm is None or isinstance(request.confirm, str)
            assert protocol.parse(event) == request  # deterministic
        count += 1

    check()
    print(f"parse: {count} events")
    assert count >= PARSE_EVENTS


# --- database helpers -----------------------------------------------------------------

SEED = """
INSERT INTO leads (lead_id, lead_id_externo, origem_arquivo, origem_aba, nome, status)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'ext-1', 'base.xlsx', 'aba', 'Ana', 'novo'),
       ('00000000-0000-0000-0000-0000000000a2', 'ext-2', 'base.xlsx', 'aba', 'Bia', 'agendado');
INSERT INTO lead_telefones (lead_id, telefone, tipo_origem)
VALUES ('00000000-0000-0000-0000-0000000000a1', '+5511999990000', 'movel');
INSERT INTO lead_emails (lead_id, email)
VALUES ('00000000-0000-0000-0000-0000000000a2', 'bia@example.com');
INSERT INTO dry_run_log (tenant_id, lead_id, canal_decidido, motivo_decisao, ambiente)
VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000a1', 'whatsapp', 'teste', 'dev'),
       (gen_random_uuid(), NULL, 'none', 'sem canal', 'prod');
"""

_TABLES = text("""
    SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
     WHERE table_type = 'BASE TABLE'
       AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1""")
_ADVISORY = text("""
    SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""")


def fingerprint(url: URL) -> dict[str, Any]:
    """Revision, schema, and every table's row count and content digest."""
    with connect(url) as conn:
        tables: dict[str, tuple[int, str | None]] = {}
        for (name,) in conn.execute(_TABLES).all():
            tables[name] = tuple(conn.execute(text(
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) "
                f"FROM {name} t")).one())
        picture = {
            "revision": directory.current_heads(directory.script_directory(), conn),
            "tables": tables,
            "schema": introspect.snapshot(conn),
            "audit": conn.execute(text("SELECT to_regclass(:t)"), {"t": audit.TABLE}).scalar(),
            "advisory_locks": conn.execute(_ADVISORY).scalar(),
        }
        conn.commit()
    return picture


def advisory_locks(url: URL) -> int:
    with connect(url) as conn:
        held = conn.execute(_ADVISORY).scalar()
    return int(held or 0)


@pytest.fixture
def secret_at_017(migrator_url: URL, make_secret: Callable[..., str]) -> tuple[URL, str]:
    """A fresh database of the migration role at 017, and a secret for it."""
    command.upgrade(migrator_url, "017")
    return migrator_url, make_secret(secret_for(migrator_url))


# --- 2. the handler over a database it must not change ----------------------------------

READ_ONLY_ACTIONS = ("current", "history", "plan", "drift", "verify", "list-migrations", "adopt",
                     "downgrade")


@st.composite
def clean_read_only(draw: st.DrawFn) -> Any:
    """A well-typed event that reads (or is refused before touching anything)."""
    action = draw(st.sampled_from(READ_ONLY_ACTIONS))
    event: dict[str, Any] = {"action": action}
    if action in ("plan", "downgrade") and (action == "downgrade" or draw(st.booleans())):
        event["target"] = draw(st.sampled_from(REVISION_LIKE))
    if action == "downgrade" and draw(st.booleans()):
        event["allow_downgrade"] = False
    if action == "adopt" and draw(st.booleans()):
        event["dry_run"] = draw(st.booleans())
    return event


READ_ONLY_EVENTS_STRATEGY: st.SearchStrategy[Any] = st.one_of(
    JSON_EVENTS, valid_looking(READ_ONLY_ACTIONS), clean_read_only(), clean_read_only(),
    clean_read_only())

@pytest.mark.slow
def test_handler_answers_every_event_and_never_changes_the_database(
        invoke: Invoke, secret_at_017: tuple[URL, str]) -> None:
    url, arn = secret_at_017
    with connect(url) as conn:
        conn.execute(text(SEED))
        conn.commit()
    before = fingerprint(url)
    assert before["revision"] == ("017",)
    assert all(count > 0 for count, _ in before["tables"].values())
    assert before["audit"] == audit.TABLE  # the upgrade to 017 left one row, as designed
    warm = invoke({"action": "current"}, secret=arn)
    assert (warm["status"], warm["revision"]) == ("success", "017")
    count = 0
    sent: dict[str, int] = {}

    @_settings(READ_ONLY_EVENTS)
    @given(event=READ_ONLY_EVENTS_STRATEGY)
    def check(event: Any) -> None:
        nonlocal count
        request = parsed(event)
        assume(not changes_database(request, event))
        answer = invoke(event)
        check_answer(event, answer)
        if request is not None and answer["status"] != "error":
            # Reads of a database at 017 answer exactly.
            if request.action == "current":
                assert (answer["revision"], answer["is_head"]) == ("017", False)
            if request.action == "list-migrations":
                assert answer["executedMigrations"] == ["lead_ingestion", "017"]
            if request.action == "history":
                assert [r["revision"] for r in answer["revisions"]] == CHAIN
            if request.action == "adopt":
                assert (answer["status"], answer["adoption"]) == ("noop", "already_managed")
            if request.action == "plan":
                assert answer["from_revision"] == "017"
                assert [p["revision"] for p in answer["pending"]] == \
                    CHAIN[2:2 + len(answer["pending"])]
            assert answer["applied"] == []
        if request is not None and request.action == "downgrade":
            assert answer["error_code"] == "DOWNGRADE_REFUSED"
        if request is not None and request.action == "drift":
            assert answer["status"] == "error"  # not at head: nothing to compare
        kind = "refused" if request is None else request.action
        sent[kind] = sent.get(kind, 0) + 1
        count += 1

    check()
    after = fingerprint(url)
    assert after == before
    print(f"read-only handler: {count} events {dict(sorted(sent.items()))}")
    assert count >= READ_ONLY_EVENTS
    assert sent.get("refused", 0) >= READ_ONLY_EVENTS // 4
    assert sum(v for k, v in sent.items() if k != "refused") >= READ_ONLY_EVENTS // 10


# --- 3. the handler over a database it may change -----------------------------------------

CHANGING_ACTIONS = ("upgrade", "run-migration", "downgrade", "adopt")


@st.composite
def changing(draw: st.DrawFn) -> Any:
    """Mostly events parse accepts (so the database moves); a fifth fuzzier ones."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return draw(valid_looking(CHANGING_ACTIONS))
    action = draw(st.sampled_from(CHANGING_ACTIONS))
    event: dict[str, Any] = {"action": action}
    if action != "adopt" and (action != "upgrade" or draw(st.booleans())):
        event["target"] = draw(st.sampled_from(REVISION_LIKE) | st.from_regex(
            rf"(head|base|{'|'.join(REVISIONS)}|)[+-][0-7]", fullmatch=True))
    if action == "downgrade":
        event["allow_downgrade"] = True
        if draw(st.booleans()):
            event["confirm"] = event["target"]
    if action == "adopt" and draw(st.booleans()):
        event["dry_run"] = draw(st.booleans())
    if action == "upgrade" and draw(st.booleans()):
        del event["action"]  # the default action
    return event


def observe(conn: Any) -> tuple[str | None, int]:
    """The database's revision and the advisory locks held in it, read on ``conn``."""
    heads = directory.current_heads(directory.script_directory(), conn)
    held = conn.execute(_ADVISORY).scalar()
    conn.commit()  # never sit in a transaction between events
    return (heads[0] if heads else None), int(held or 0)


@pytest.mark.slow
def test_changing_events_answer_what_they_did(invoke: Invoke,
                                              secret_at_017: tuple[URL, str]) -> None:
    url, arn = secret_at_017
    warm = invoke({"action": "current"}, secret=arn)
    assert warm["revision"] == "017"
    count = 0
    outcomes: dict[str, int] = {}

    with connect(url, application_name="fuzz-observer") as observer:

        @_settings(CHANGING_EVENTS)
        @given(event=changing())
        def check(event: Any) -> None:
            nonlocal count
            request = parsed(event)
            was, held = observe(observer)
            assert held == 0
            answer = invoke(event)
            check_answer(event, answer)
            now, held = observe(observer)
            assert held == 0  # no lock left behind
            if answer["status"] in ("success", "noop"):
                assert now == answer["to_revision"], (answer, now)
            if answer["status"] == "noop":
                assert now == was
                assert answer["applied"] == []
            if answer["status"] == "success" and request is not None \
                    and request.action != "adopt":
                assert answer["from_revision"] == was
                assert answer["applied"]
            if answer["status"] == "error":
                if answer["applied"]:
                    assert now == answer["to_revision"], (answer, now)
                else:
                    assert now == was, (answer, was, now)
            key = answer["status"] if answer["status"] != "error" else answer["error_code"]
            outcomes[key] = outcomes.get(key, 0) + 1
            count += 1

        check()
    print(f"changing handler: {count} events {dict(sorted(outcomes.items()))}")
    assert count >= CHANGING_EVENTS
    assert outcomes.get("success", 0) >= 10  # the database really moved
    final = command.upgrade(url, "head")
    assert final.to_revision == HEAD
    command.check(url)  # raises DriftDetected on any difference


# --- bugs the fuzzing found, fixed: regression tests --------------------------------

@pytest.mark.parametrize(("event", "code"), [
    ({"action": "plan", "target": "head+1"}, "BAD_EVENT"),  # past an end: malformed as such
    ({"action": "upgrade", "target": PAST_017}, "UNKNOWN_REVISION"),
    ({"action": "run-migration", "target": "lead_ingestion-1"}, "UNKNOWN_REVISION"),
], ids=["plan head+1", "upgrade past the head", "run-migration lead_ingestion-1"])
def test_target_off_the_chain_is_answered_not_raised(
        invoke: Invoke, secret_at_017: tuple[URL, str], event: dict[str, Any],
        code: str) -> None:
    url, arn = secret_at_017
    answer = invoke(event, secret=arn)
    assert answer["error_code"] == code
    assert command.current(url) == "017"


@pytest.mark.parametrize("target", ["+1\n", "017\n", "head\n"])
def test_trailing_newline_target_is_bad_event(target: str) -> None:
    with pytest.raises(BadEvent):
        protocol.parse({"action": "upgrade", "target": target})


def test_null_event_answer_names_its_action(invoke: Invoke,
                                                      secret_at_017: tuple[URL, str]) -> None:
    url, arn = secret_at_017
    answer = invoke(None, secret=arn)
    assert (answer["status"], answer["to_revision"]) == ("success", HEAD)
    assert command.current(url) == HEAD
    assert answer["action"] == "upgrade"


# --- booleans are JSON booleans: at the door ----------------------------------------

LOOSE_TRUTHS: list[Any] = ["true", "false", "yes", "1", "", 1, 0, 1.0, None, [True], {}]


def test_a_flag_that_is_not_a_json_boolean_changes_nothing(
        invoke: Invoke, make_secret: Callable[..., str], head_url: URL,
        legacy_url: URL) -> None:
    """The real handler: "allow_downgrade": "true" never downgrades, "dry_run": "yes"
    never adopts for real (nor is "dry_run": "false" a real adoption)."""
    head, legacy = make_secret(secret_for(head_url)), make_secret(secret_for(legacy_url))
    for value in LOOSE_TRUTHS:
        for event, arn in (({"action": "downgrade", "target": "020",
                             "allow_downgrade": value}, head),
                           ({"action": "adopt", "dry_run": value}, legacy)):
            answer = invoke(event, secret=arn)
            key = next(k for k in event if k not in ("action", "target"))
            assert (answer["status"], answer.get("error_code")) == ("error", "BAD_EVENT"), answer
            assert answer["error"] == f"{key} must be true or false"
    assert command.current(head_url) == HEAD
    with connect(legacy_url) as conn:
        assert conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None
