"""pytest-alembic's built-in checks, wired to this project's script directory.

pytest-alembic 0.13's automatic test insertion does not collect under pytest 9
(its collector sets a node attribute pytest 9 no longer has), so the insertion is
pointed at a path that is never collected (``pytest_alembic_tests_path`` in
pyproject.toml) and the same built-in check functions are called here instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_alembic.tests import default
from pytest_alembic.tests.experimental import downgrade_leaves_no_trace
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Engine

from alquimista_schema.script import directory


@pytest.fixture
def alembic_config() -> Any:
    return directory.make_config()


@pytest.fixture
def alembic_engine(empty_url: URL) -> Iterator[Engine]:
    engine = create_engine(empty_url, poolclass=pool.NullPool)
    yield engine
    engine.dispose()


def test_single_head_revision(alembic_runner: Any) -> None:
    default.test_single_head_revision(alembic_runner)


def test_upgrade(alembic_runner: Any) -> None:
    default.test_upgrade(alembic_runner)


def test_model_definitions_match_ddl(alembic_runner: Any) -> None:
    default.test_model_definitions_match_ddl(alembic_runner)


def test_up_down_consistency(alembic_runner: Any) -> None:
    default.test_up_down_consistency(alembic_runner)


@pytest.mark.xfail(strict=True, reason=(
    "pytest-alembic 0.13.1's experimental check fails inside MetaData.reflect on this stack "
    "(SQLAlchemy 2.0.58 and 2.1.9: NoSuchModuleError 'sqlalchemy.dialects:dialect') before it "
    "compares anything; the guarantee is checked, more strictly (views, functions, triggers, "
    "constraints too), by test_command.py::test_each_revision_down_and_up_restores_the_schema_"
    "exactly. strict=True: when pytest-alembic fixes it, this starts passing and must be "
    "unmarked."))
def test_downgrade_leaves_no_trace(alembic_runner: Any) -> None:
    downgrade_leaves_no_trace.test_downgrade_leaves_no_trace(alembic_runner)
