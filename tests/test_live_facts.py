"""The live schema's facts live in the repository: docs/CONTEXT.md, a byte-for-byte copy.

Every "exactly" in the code and the READMEs is measured against it; where the steering
copy (../shared/CONTEXT.md, beside a checkout) is present, the two are the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.schema.test_models import LIVE_BODY_LENGTH, LIVE_BODY_MD5
from tests.support.helpers import ROOT

FACTS = ROOT / "docs" / "CONTEXT.md"
STEERING = ROOT.parent / "shared" / "CONTEXT.md"


def test_the_copy_is_the_steering_text_byte_for_byte() -> None:
    if not STEERING.exists():
        pytest.skip(f"no {STEERING} beside this checkout to compare with")
    assert FACTS.read_bytes() == STEERING.read_bytes()


def test_the_function_body_it_gives_has_the_live_md5() -> None:
    """The block between the two $$ lines, its shown trailing spaces (␠) made real."""
    text = FACTS.read_text(encoding="utf-8")
    [block] = re.findall(r"```\n\$\$\n(.*?)\$\$\n```", text, re.S)
    body = "\n" + block.replace("␠", " ")
    assert len(body) == LIVE_BODY_LENGTH
    assert hashlib.md5(body.encode()).hexdigest() == LIVE_BODY_MD5  # noqa: S324 (as measured)
    assert f"md5 `{LIVE_BODY_MD5}`" in text


def test_every_citation_points_at_the_copy() -> None:
    """A bare "CONTEXT.md" in the code or a README names a file a reader cannot find."""
    bare = re.compile(r"(?<![/\w.])CONTEXT\.md")
    found = []
    for path in [ROOT / "README.md", *ROOT.glob("deploy/**/*.md"), *ROOT.glob("src/**/*.py"),
                 *ROOT.glob("tests/**/*.py"), *ROOT.glob("deploy/**/*.py")]:
        if path in (FACTS, Path(__file__)) or ".venv" in path.parts or "cdk.out" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if bare.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []
