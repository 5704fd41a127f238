"""The README says what the code does: its error-code tables list every code, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from alquimista_schema import errors

README = Path(__file__).resolve().parents[1] / "README.md"


def codes_in_the_code() -> set[str]:
    found, todo = set(), [errors.SchemaError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return found | {"INTERNAL_ERROR"}  # answered for a bug (events.Runner._bug)


def test_every_error_code_is_documented_and_no_other() -> None:
    text = README.read_text()
    section = text.split("| error_code | meaning |")[1].split("\n\n")[0]
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))
    listed = set(re.findall(r"`([A-Z_]{3,})`", text.split("The CLI's tool commands")[1]
                            .split("\n\n")[0]))
    assert table | listed == codes_in_the_code()
