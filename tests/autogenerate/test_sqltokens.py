"""SQL compared by tokens: layout, comments and keyword case never count; values always do."""

from __future__ import annotations

import pytest

from alquimista_schema.autogenerate.sqltokens import Mismatch, first_mismatch, same, tokens

BODY = """
BEGIN
    RETURN QUERY
    SELECT l.lead_id, "Nome", 'ambos', 100, $q$ a ; b $q$
    FROM leads l
    WHERE l.status = p_status;
END;
"""

SAME = [
    ("keyword case", BODY.replace("BEGIN", "begin").replace("SELECT", "Select")
     .replace("RETURN QUERY", "return query")),
    ("unquoted identifier case", BODY.replace("l.lead_id", "L.LEAD_ID")),
    ("indentation", BODY.replace("    ", "\t\t")),
    ("line breaks", " ".join(BODY.split())),
    ("a line comment", BODY.replace("FROM leads l", "FROM leads l -- the leads")),
    ("a block comment", BODY.replace("RETURN QUERY", "RETURN /* all */ QUERY")),
]

DIFFERENT = [
    ("string literal", BODY.replace("'ambos'", "'both'"), "'both'", "'ambos'"),
    ("string literal case", BODY.replace("'ambos'", "'AMBOS'"), "'AMBOS'", "'ambos'"),
    ("quoted identifier", BODY.replace('"Nome"', '"nome"'), '"nome"', '"Nome"'),
    ("number", BODY.replace("100", "1000"), "1000", "100"),
    ("dollar-quoted text", BODY.replace("$q$ a ; b $q$", "$q$ A ; b $q$"), "$q$ A ; b $q$",
     "$q$ a ; b $q$"),
    ("a name", BODY.replace("p_status", "p_estado"), "p_estado", "p_status"),
    ("an operator", BODY.replace("l.status =", "l.status <>"), "<>", "="),
]


@pytest.mark.parametrize(("case", "variant"), SAME, ids=[c for c, _ in SAME])
def test_cosmetic_edits_are_the_same_sql(case: str, variant: str) -> None:
    assert variant != BODY
    assert first_mismatch(variant, BODY) is None
    assert same(variant, BODY)


@pytest.mark.parametrize(("case", "variant", "got", "want"), DIFFERENT,
                         ids=[c[0] for c in DIFFERENT])
def test_values_and_names_are_compared_exactly(case: str, variant: str, got: str,
                                               want: str) -> None:
    mismatch = first_mismatch(variant, BODY)
    assert mismatch is not None
    assert (mismatch.got, mismatch.want) == (got, want)
    line = variant.splitlines()[mismatch.line - 1]
    assert line[mismatch.column - 1:].startswith(got)  # located in the first text
    assert not same(variant, BODY)


def test_the_location_is_line_and_column_of_the_first_text() -> None:
    mismatch = first_mismatch("\nSELECT\n    'both'", "SELECT 'ambos'")
    assert mismatch == Mismatch(3, 5, "'both'", "'ambos'")
    assert mismatch.describe() == "line 3, column 5: 'both' where the revision has 'ambos'"


def test_a_shorter_or_longer_text_says_where_it_ends() -> None:
    short = first_mismatch("SELECT 1;", "SELECT 1; SELECT 2;")
    assert short == Mismatch(1, 10, None, "SELECT")
    assert short.describe() == "line 1, column 10: it ends where the revision has SELECT"
    long = first_mismatch("SELECT 1;\nSELECT 2;", "SELECT 1;")
    assert long == Mismatch(2, 1, "SELECT", None)
    assert long.describe() == "line 2, column 1: SELECT where the revision's ends"


def test_a_comment_cannot_hide_code_and_code_cannot_hide_in_a_comment() -> None:
    assert not same("SELECT 1; -- DROP TABLE leads", "SELECT 1; DROP TABLE leads")
    assert not same("SELECT '-- not a comment'", "SELECT ''")


def test_a_long_token_is_shortened_in_the_message() -> None:
    mismatch = first_mismatch("SELECT '" + "x" * 200 + "'", "SELECT 'y'")
    assert mismatch is not None
    assert len(mismatch.describe()) < 120


def test_absent_texts() -> None:
    assert same(None, None)
    assert not same(None, "SELECT 1")
    assert not same("SELECT 1", None)


def test_tokens_keep_what_was_typed() -> None:
    [select, name] = tokens("Select\n  Nome")
    assert (select.key, select.text, select.line, select.column) == ("select", "Select", 1, 1)
    assert (name.key, name.text, name.line, name.column) == ("nome", "Nome", 2, 3)
