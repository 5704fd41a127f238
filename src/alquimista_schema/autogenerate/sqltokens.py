"""SQL compared by what PostgreSQL would run, not by how it is typed.

Two texts are the same when their token streams are equal after folding the case
of keywords and unquoted identifiers and dropping whitespace and comments. String
literals, quoted identifiers, numbers and dollar-quoted text stay exact: changing
one changes what runs. The tokens come from sqlparse's lexer (pure Python, about
50 KB): pglast's scanner is PostgreSQL's own, but its wheel would add about 8 MB
to a Lambda bundle that must stay small, and a lexer is all this needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlparse import lexer
from sqlparse import tokens as T

_SKIPPED = (T.Whitespace, T.Newline, T.Comment)
# Keywords and unquoted names (sqlparse calls a quoted identifier a String.Symbol,
# which is outside Name, so it stays exact).
_FOLDED = (T.Keyword, T.Name)
_SHOWN = 60


@dataclass(frozen=True)
class Token:
    """A significant token: its compared form, and where it is typed (1-based)."""

    key: str
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Mismatch:
    """The first place where two texts differ, located in the first of them."""

    line: int
    column: int
    got: str | None
    """The token found there; None when the text ends before the other one."""
    want: str | None
    """The other text's token; None when it ends there."""

    def describe(self) -> str:
        """Say it in one phrase: where, what was found, what was expected."""
        where = f"line {self.line}, column {self.column}"
        if self.got is None:
            return f"{where}: it ends where the revision has {_show(self.want)}"
        if self.want is None:
            return f"{where}: {_show(self.got)} where the revision's ends"
        return f"{where}: {_show(self.got)} where the revision has {_show(self.want)}"


def _show(text: str | None) -> str:
    shown = text or ""
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 3] + "..."


def tokens(sql: str) -> list[Token]:
    """Return the significant tokens of ``sql``, each with its compared form."""
    out: list[Token] = []
    line, column = 1, 1
    for ttype, value in lexer.tokenize(sql):  # type: ignore[no-untyped-call]
        if not any(ttype in kind for kind in _SKIPPED):
            folded = any(ttype in kind for kind in _FOLDED)
            out.append(Token(value.lower() if folded else value, value, line, column))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            column = len(value) - value.rfind("\n")
        else:
            column += len(value)
    return out


def first_mismatch(got: str, want: str) -> Mismatch | None:
    """Return where ``got`` first differs from ``want`` by tokens, or None when they agree."""
    ours, theirs = tokens(got), tokens(want)
    for mine, other in zip(ours, theirs, strict=False):
        if mine.key != other.key:
            return Mismatch(mine.line, mine.column, mine.text, other.text)
    if len(ours) < len(theirs):
        line, column = _end(got)
        return Mismatch(line, column, None, theirs[len(ours)].text)
    if len(ours) > len(theirs):
        extra = ours[len(theirs)]
        return Mismatch(extra.line, extra.column, extra.text, None)
    return None


def same(got: str | None, want: str | None) -> bool:
    """Tell whether two texts (or two absences) would run the same."""
    if got is None or want is None:
        return got is want
    return first_mismatch(got, want) is None


def _end(sql: str) -> tuple[int, int]:
    """Return the line and column just after the last character of ``sql``."""
    return sql.count("\n") + 1, len(sql) - sql.rfind("\n")
