"""Snapshot names and tags inside RDS's documented rules, for any revision id or request id.

The oracles are RDS's own words, not snapshot.py's code: CreateDBClusterSnapshot's
DBClusterSnapshotIdentifier ("1 to 63 letters, numbers, or hyphens. First character must
be a letter. Can't end with a hyphen or contain two consecutive hyphens") and the Tag
type (key up to 128, value up to 256 Unicode characters matching
``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``, neither prefixed ``aws:`` nor ``rds:``).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from alquimista_schema.runtime import snapshot

IDENTIFIER = re.compile(r"[a-zA-Z](?:-?[a-zA-Z0-9])*")  # letter first, no --, no trailing -


class TagPattern:
    """``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$``, read as Java reads it: \\p{L}, \\p{Z} and
    \\p{N} are the Unicode general categories L*, Z* and N*; the whole value must match
    (a trailing newline is no letter)."""

    @staticmethod
    def fullmatch(value: str) -> bool:
        return all(c in "_.:/=+-@" or unicodedata.category(c)[0] in "LZN" for c in value)


TAG_VALUE = TagPattern()

revisions = st.one_of(
    st.none(), st.text(max_size=60),
    st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),  # hash-like ids
    st.text(alphabet=st.characters(codec="ascii"), min_size=38, max_size=45),
    st.sampled_from(["lead_ingestion", "017", "021", "base", "--", "---a---", "Ärger_2"]))
request_ids = st.one_of(st.text(max_size=80), st.uuids().map(str),
                        st.sampled_from(["", "-", "req-1", "Req-42"]))
checked = settings(max_examples=600, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _hypothesis_storage_outside_the_checkout(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@checked
@given(start=revisions, end=revisions, request_id=request_ids)
def test_every_name_is_one_rds_accepts(start: str | None, end: str | None,
                                       request_id: str) -> None:
    name = snapshot.name_for(start, end, request_id)
    assert len(name) <= 63, name
    assert IDENTIFIER.fullmatch(name), name
    assert name == name.lower()  # RDS stores it lower-cased: the one we wait for is ours
    assert name.startswith("alquimista-schema-")  # what the stack's grant covers


@checked
@given(first=st.tuples(revisions, revisions, request_ids),
       second=st.tuples(revisions, revisions, request_ids))
def test_distinct_runs_never_share_a_name(first: tuple[str | None, str | None, str],
                                          second: tuple[str | None, str | None, str]) -> None:
    assume(first != second)
    assert snapshot.name_for(*first) != snapshot.name_for(*second)


def test_the_same_range_and_request_gets_the_same_name_again() -> None:
    """A retried request (its first answer lost) finds its own snapshot, not a new one."""
    assert snapshot.name_for("017", "021", "r-1") == snapshot.name_for("017", "021", "r-1")
    assert snapshot.name_for("017", "021", "r-1") != snapshot.name_for("017", "021", "r-2")


@pytest.mark.parametrize(("start", "end", "request_id", "reads"), [
    (None, "021", "abc", "alquimista-schema-base-to-021-"),
    ("017", "021", "8f0e_1B/x", "alquimista-schema-017-to-021-"),
    ("lead_ingestion", "017", "--a--", "alquimista-schema-lead-ingestion-to-017-"),
    ("a" * 40, "b" * 40, str(uuid.UUID(int=0)),
     f"alquimista-schema-{'a' * 14}-to-{'b' * 14}-"),
    ("017", "f" * 40, "r", f"alquimista-schema-017-to-{'f' * 25}-"),
])
def test_a_name_reads_as_its_revision_range(start: str | None, end: str, request_id: str,
                                            reads: str) -> None:
    name = snapshot.name_for(start, end, request_id)
    assert name.startswith(reads)
    assert re.fullmatch(r"[0-9a-f]{12}", name[len(reads):]), name  # then the digest only


def test_the_longest_names_use_all_63_characters() -> None:
    longest = snapshot.name_for("a" * 40, "b" * 40, str(uuid.uuid4()))
    assert len(longest) == 63


@checked
@given(text=st.text(max_size=300))
def test_every_tag_value_is_one_rds_accepts(text: str) -> None:
    value = snapshot.tag_value(text)
    assert 1 <= len(value) <= 256
    assert TAG_VALUE.fullmatch(value), value
    assert not value.lower().startswith(("aws:", "rds:"))


@checked
@given(text=st.text(st.characters(categories=["L", "Z", "N"], include_characters="_.:/=+-@"),
                    min_size=1, max_size=256))
def test_a_value_rds_accepts_is_kept_as_it_is(text: str) -> None:
    assume(not text.lower().startswith(("aws:", "rds:")))
    assert TAG_VALUE.fullmatch(text)  # the strategy draws from the pattern's classes
    assert snapshot.tag_value(text) == text


@checked
@given(request_id=request_ids, start=revisions, end=revisions)
def test_every_tag_is_one_rds_accepts(request_id: str, start: str | None,
                                      end: str | None) -> None:
    tags = snapshot.tags_for(request_id, start, end)
    assert set(tags) == {"project", "request-id", "from-revision", "to-revision"}
    for key, value in tags.items():
        assert len(key) <= 128
        assert TAG_VALUE.fullmatch(key)
        assert 1 <= len(value) <= 256
        assert TAG_VALUE.fullmatch(value), (key, value)
    assert tags["project"] == "alquimista-schema"


def test_tags_keep_the_full_range_and_request_id() -> None:
    long = "0123456789abcdef0123456789abcdef01234567"
    assert snapshot.tags_for("Req-42/x", None, long) == {
        "project": "alquimista-schema", "request-id": "Req-42/x", "from-revision": "base",
        "to-revision": long}
    assert snapshot.tags_for("aws:lambda", "rds:x", "a#b")["request-id"] == "_aws:lambda"
    assert snapshot.tags_for("r", "rds:x", "a#b")["from-revision"] == "_rds:x"
    assert snapshot.tags_for("r", "x", "a#b")["to-revision"] == "a_b"
