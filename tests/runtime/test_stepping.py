"""Pins of the Alembic behaviour runtime/stepping.py relies on (its non-public API).

An Alembic release that changes one of these fails here, not in a deploy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import RevisionStep
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import configure, stepping
from alquimista_schema.script import directory
from tests.support.revisions import HEAD, REVISIONS

CHAIN = REVISIONS


def test_steps_are_alembics_revision_steps_in_order() -> None:
    script = directory.script_directory()
    up = stepping.steps(script, "017", "020", upgrade=True)
    assert all(isinstance(s, RevisionStep) for s in up)
    assert [s.revision.revision for s in up] == ["018", "019", "020"]
    assert all(s.is_upgrade for s in up)
    assert [stepping.landing(s) for s in up] == ["018", "019", "020"]
    down = stepping.steps(script, "020", "017", upgrade=False)
    assert [s.revision.revision for s in down] == ["020", "019", "018"]
    assert not any(s.is_upgrade for s in down)
    assert [stepping.landing(s) for s in down] == ["019", "018", "017"]
    assert stepping.landing(stepping.steps(script, "lead_ingestion", "base",
                                           upgrade=False)[-1]) is None
    assert [s.revision.revision for s in stepping.steps(script, None, "head", upgrade=True)] \
        == CHAIN


def test_the_steps_option_replaces_the_running_contexts_function(empty_url: URL) -> None:
    """configure(fn=...) wins over the fn the context was made with (the plain command's),
    and Alembic asks for the next step only once the previous one has committed."""
    script = directory.script_directory()
    todo = stepping.steps(script, None, "017", upgrade=True)
    seen: list[str] = []

    def made_with(heads: Any, context: Any) -> Iterator[Any]:
        raise AssertionError("the context ran the function it was made with")

    def ours(heads: Any, context: Any) -> Iterator[Any]:
        for step in todo:
            yield step
            with connect(empty_url) as other:  # another session sees it: committed
                seen.append(str(other.execute(text("SELECT version_num FROM alembic_version"))
                                .scalar()))

    config = directory.make_config(session_configured=True)
    with connect(empty_url) as conn, EnvironmentContext(config, script, fn=made_with,
                                                        as_sql=False, destination_rev="017") \
            as context:
        configure.run_on(context, conn, steps=ours)
    assert seen == ["lead_ingestion", "017"]


def test_an_environment_runs_the_steps_it_is_given(empty_url: URL) -> None:
    """The public way (EnvironmentContext(fn=...)) for the run's own Alembic run."""
    script = directory.script_directory()
    todo = stepping.steps(script, None, "lead_ingestion", upgrade=True)
    with connect(empty_url) as conn:
        config = directory.make_config(connection=conn, session_configured=True)
        with stepping.environment(config, script, lambda heads, ctx: iter(todo),
                                  "lead_ingestion"):
            script.run_env()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == "lead_ingestion"


def test_a_downgrade_renders_offline_even_inside_a_running_environment(
        empty_url: URL) -> None:
    script = directory.script_directory()
    rendered: list[str] = []

    def render_then_nothing(heads: Any, context: Any) -> Iterator[Any]:
        rendered.append(stepping.render_downgrade(script, HEAD, "lead_ingestion"))
        return iter(())

    with connect(empty_url) as conn:
        config = directory.make_config(connection=conn, session_configured=True)
        with stepping.environment(config, script, render_then_nothing, None):
            script.run_env()
    [sql] = rendered
    assert "DROP TABLE dry_run_log" in sql
    assert "DROP TABLE leads" not in sql  # lead_ingestion itself is not undone


def test_a_context_runs_without_any_database() -> None:
    """The as_sql option turns a context offline: its function runs, nothing connects."""
    script = directory.script_directory()
    seen: list[tuple[str, ...]] = []

    def look(heads: Any, context: Any) -> Iterator[Any]:
        seen.append(tuple(heads))
        return iter(())

    config = directory.make_config()
    config.attributes.pop("embedded")
    with EnvironmentContext(config, script, fn=look, as_sql=False) as context:
        assert not context.is_offline_mode()
        configure.run_without_database(context)
    assert seen == [()]
