"""Children of the test process behind the AWS rules layer (tests/support/aws_rules.py).

The ``aws`` fixture puts this folder first on PYTHONPATH and sets ALQUIMISTA_AWS_RULES=1, so
a CLI or ``python -m lambda_entry`` started with moto's endpoint refuses what AWS refuses,
as the test process does. Nothing heavy is imported here: the layer is loaded (by path) only
when the child itself imports botocore.session, so a child that never calls AWS never pays
for boto3 (tests assert it). Another sitecustomize further on the path still runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "aws_rules.py"
TARGET = "botocore.session"


def _load_rules() -> Any:
    name = "alquimista_test_aws_rules"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RULES)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        _load_rules().install()


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps botocore.session's loader: once it has run, the layer is installed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


def _chain() -> None:
    """Run the sitecustomize Python would have found without this folder, if any."""
    others = [e for e in sys.path if Path(e or ".").resolve() != HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if os.environ.get("ALQUIMISTA_AWS_RULES") == "1":
    if "botocore.session" in sys.modules:  # pragma: no cover - imported by a .pth already
        _load_rules().install()
    else:
        sys.meta_path.insert(0, _Finder())
_chain()
