"""Raw context values to typed ones, collecting every problem instead of stopping at one.

Values come from ``cdk synth -c key=value`` (always strings), ``cdk.json``/``cdk.context.json``
or ``CDK_CONTEXT_JSON`` (any JSON type), so every reader accepts both forms.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alquimista_deploy import aws_rules, spec
from alquimista_deploy.formats import (
    BUNDLE_COMMAND,
    FALSE,
    FORMATS,
    MAX_SUBNETS,
    MAX_UNZIPPED_BYTES,
    NONE,
    SUBNET_ID,
    TRUE,
)


def blank(value: Any) -> bool:
    """Absent, or an empty string/list (``-c subnetIds=`` is a mistake, not a choice)."""
    return value is None or (isinstance(value, str | list) and not value)


def _json(text: str) -> Any:
    """Parse a JSON value given as a string; None when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


class Reader:
    """Turn raw context values into typed ones, collecting every problem instead of the first."""

    def __init__(self, get: Callable[[str], Any], missing: list[str]) -> None:
        self.get = get
        self.missing = set(missing)
        self.problems: list[str] = []
        self.bad: set[str] = set()
        """Keys with a problem already: later checks do not report them again."""
        self.bundle_names: set[str] | None = None

    def problem(self, key: str, message: str) -> None:
        self.bad.add(key)
        self.problems.append(message)

    def text(self, key: str) -> str:
        """A required string that must match its format (a missing one is reported once)."""
        if key in self.missing:
            self.bad.add(key)
            return ""
        value = str(self.get(key)).strip()
        pattern, meaning = FORMATS[key]
        rule = aws_rules.RULES.get(key)
        why = f"is not {meaning}" if not re.fullmatch(pattern, value) else \
            rule(value) if rule else None
        if why:
            self.problem(key, f"{key}={value!r} {why}")
        return value

    def none(self, key: str) -> bool:
        """Whether the value is the word none: a choice of nothing, not a value left out."""
        value = self.get(key)
        return isinstance(value, str) and value.strip().lower() == NONE

    def concurrency(self, key: str, default: int) -> int | None:
        """Reserved concurrency: a positive whole number, or none (unreserved); absent means
        ``default``. 0 is refused: Lambda throttles every invocation of a function reserved
        at 0, so the runner would never run."""
        value = self.get(key)
        if blank(value):
            return default
        if self.none(key):
            return None
        text = str(value).strip()
        digits = text.isascii() and text.isdigit()
        if text == "0":
            self.problem(key, f"{key}=0 stops every invocation (Lambda throttles a function "
                              f"reserved at 0): give {default} (the default), a larger number, "
                              f"or {NONE} to leave the function unreserved")
        elif not digits:
            self.problem(key, f"{key}={value!r} is not a positive whole number or {NONE}")
        return int(text) if digits and int(text) > 0 else default

    def optional(self, key: str) -> str | None:
        """An optional string; absent or empty means not set."""
        return None if blank(self.get(key)) else self.text(key)

    def subnets(self, key: str) -> tuple[str, ...]:
        """A JSON list, or a comma-separated string as ``-c`` gives it: unique, at most 16."""
        if key in self.missing:
            return ()
        value = raw = self.get(key)
        if isinstance(value, str):
            value = _json(value) if value.strip().startswith("[") else value.split(",")
        ids = tuple(str(item).strip() for item in value) if isinstance(value, list) else ()
        wrong = [item for item in ids if not SUBNET_ID.fullmatch(item)]
        twice = sorted({item for item in ids if ids.count(item) > 1})
        if not ids or wrong:
            self.problem(key, f"{key} must be subnet ids (subnet-...), as a JSON list or "
                              f"comma-separated; got {raw!r}")
        elif twice:
            self.problem(key, f"{key} names {', '.join(twice)} more than once: give each "
                              "subnet once")
        elif len(ids) > MAX_SUBNETS:
            self.problem(key, f"{key} names {len(ids)} subnets, over Lambda's limit of "
                              f"{MAX_SUBNETS} for a function")
        return ids

    def flag(self, key: str) -> bool:
        """A boolean; ``-c key=true`` arrives as the string 'true'."""
        value = self.get(key)
        if isinstance(value, bool):
            return value
        text = "" if value is None else str(value).strip().lower()
        if text not in TRUE + FALSE:
            self.problem(key, f"{key}={value!r} is not true or false")
        return text in TRUE

    def port(self, key: str) -> int | None:
        """An optional TCP port."""
        value = self.get(key)
        if blank(value):
            return None
        try:
            port = int(str(value))
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            self.problem(key, f"{key}={value!r} is not a port (1 to 65535)")
        return port

    def seconds(self, key: str, default: int, low: int, high: int) -> int:
        """Whole seconds within [low, high]; absent means ``default``."""
        value = self.get(key)
        if blank(value):
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            self.problem(key, f"{key}={value!r} is not a whole number of seconds from {low} "
                              f"to {high}")
            return default
        return number

    def mapping(self, key: str) -> dict[str, str]:
        """An optional JSON object of strings (from ``-c`` it is a JSON string)."""
        value = self.get(key)
        if blank(value):
            return {}
        if isinstance(value, str):
            value = _json(value)
        if not isinstance(value, dict):
            self.problem(key, f"{key} must be a JSON object of names to strings")
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def bundle(self, key: str, root: Path) -> Path:
        """The zip `alquimista-schema bundle` made (relative paths start at the repository):
        readable, holding the handler, within Lambda's unzipped size."""
        path = Path(str(self.get(key) or spec.DEFAULT_BUNDLE)).expanduser()
        path = path if path.is_absolute() else root / path
        if path.suffix != ".zip":
            self.problem(key, f"{key}={str(path)!r} must be the .zip that "
                              "`alquimista-schema bundle` writes")
        elif not path.is_file():
            self.problem(key, f"{key}: {path} does not exist. Build it first, from the "
                              f"repository root: `{BUNDLE_COMMAND}` (or pass -c bundle=PATH to "
                              "another zip)")
        else:
            why = self._bundle_problem(path)
            if why:
                self.problem(key, f"{key}: {path} {why}. Build it with `{BUNDLE_COMMAND}`")
        return path

    def _bundle_problem(self, path: Path) -> str | None:
        """Why the zip cannot be the function's code, or None."""
        module, _, function = spec.HANDLER.rpartition(".")
        handler = module.replace(".", "/") + ".py"
        try:
            with zipfile.ZipFile(path) as archive:
                self.bundle_names = set(archive.namelist())
                unzipped = sum(info.file_size for info in archive.infolist())
                source = archive.read(handler) if handler in self.bundle_names else None
        except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
            return f"cannot be read as a zip ({getattr(exc, 'strerror', None) or exc})"
        if source is None:
            return f"has no {handler}: it is not a bundle of the runner"
        if f"def {function}(".encode() not in source:
            return f"has a {handler} without `def {function}(` (the handler {spec.HANDLER})"
        if unzipped > MAX_UNZIPPED_BYTES:
            return (f"unzips to {unzipped:,} bytes, over Lambda's {MAX_UNZIPPED_BYTES:,} "
                    "for a function and its layers")
        return aws_rules.bundle_extensions_problem(self.bundle_names)
