"""A password with an unencoded '@' before '?', '#' or '/' never shows a fragment (issue 31).

Split at its first '@', ``Sup3r@Secret?Pw1`` would make ``Secret`` the host (looked up in
DNS) and ``Pw1@...`` a driver option, both then quoted in errors. Every door that takes a
URL refuses it before any connection, in one line that says how to encode it, and no
fragment of the password appears: the CLI (``--url``), plain ``alembic`` (``-x url=``) and
the handler run outside Lambda (``DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from alquimista_schema.cli import main
from alquimista_schema.connect import dsn
from alquimista_schema.errors import ConfigurationError
from tests.support.helpers import ROOT, alembic

PASSWORDS = ["Sup3r@Secret?Pw1", "Sup3r@Secret/Pw1", "Sup3r@Secret#Pw1", "Sup3r@Se:cret@Pw1"]
FRAGMENTS = ("Secret", "Se:cret", "Pw1")

HANDLER = """
import json, sys, types
from lambda_entry.handler import handler
print(json.dumps(handler({"action": "current"}, types.SimpleNamespace(
    aws_request_id="r-1", get_remaining_time_in_millis=lambda: 60_000))))
"""


def _cli(url: str) -> str:
    done = CliRunner().invoke(main, ["current", "--url", url], catch_exceptions=False,
                              env={"ALQUIMISTA_DEVDB": "off"})
    assert done.exit_code != 0
    return done.output


def _alembic(url: str) -> str:
    done = alembic("-x", f"url={url}", "current", ALQUIMISTA_DEVDB="off")
    assert done.returncode != 0
    return done.stdout + done.stderr


def _handler(url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_LAMBDA", "DB_"))}
    done = subprocess.run([sys.executable, "-c", HANDLER], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**env, "DATABASE_URL": url, "AWS_DEFAULT_REGION": "us-east-1"})
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["status"] == "error", answer
    return done.stdout + done.stderr


DOORS: dict[str, Callable[[str], str]] = {"cli": _cli, "alembic": _alembic,
                                          "lambda": _handler}


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("door", sorted(DOORS))
def test_an_unencoded_at_is_refused_with_no_fragment_at_every_door(door: str,
                                                                   password: str) -> None:
    said = DOORS[door](f"postgresql://migrator:{password}@db.internal:5432/app")
    assert "percent-encoded" in said, said
    assert dsn._AT_HINT in said.replace("\n", " "), said
    for fragment in FRAGMENTS:
        assert fragment not in said, (fragment, said)


RESERVED = "@:/?#%[]!$&'()*+,;= "
FIXED = {dsn._AT_HINT, dsn.MALFORMED}  # the parser's refusals that can meet a password


@settings(max_examples=400, deadline=None)
@given(password=st.text(alphabet=RESERVED + "aZ9-._~", min_size=3, max_size=24))
def test_a_password_of_any_reserved_characters_parses_whole_or_is_refused_in_fixed_words(
        password: str) -> None:
    """Written unencoded into a URL: either the driver gets exactly that password (and the
    host stays the host), or the refusal is one of the parser's fixed sentences, which
    quote nothing of the URL, so no run of the password's characters can appear."""
    url = f"postgresql://migrator:{password}@db.internal:5432/app"
    refused = None
    try:
        parsed = dsn.parse(url)
    except ConfigurationError as exc:
        refused = str(exc)
    if refused is not None:
        assert refused in FIXED, refused
        return
    assert (parsed.host, parsed.port, parsed.database) == ("db.internal", 5432, "app")
    assert parsed.password == unquote(password)

