"""CDK app (`cdk synth` runs it): check the context, define the runner's stack, synthesize.

The context is checked before aws_cdk is imported: jsii starts node at that import, and
node may print a banner (an untested or end-of-life version) that would bury the error.
The banner itself is silenced (jsii's own switches): the versions the tests run are the
ones that matter here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

SETUP = ("run the CDK app from the repository's virtualenv: `make setup` at the repository "
         "root, then `. .venv/bin/activate` (or put .venv/bin first on PATH) and run cdk again")


def quiet_node(environ: dict[str, str] | os._Environ[str]) -> None:
    """Silence jsii's node-version banner (eleven lines of ``b'!!!...'``) for this node.

    jsii's own switches: the end-of-life one takes the major versions it applies to.
    """
    node = shutil.which("node")
    found = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                           check=False).stdout if node else ""
    major = found.strip().lstrip("v").split(".")[0]
    for name in ("UNTESTED", "DEPRECATED"):
        environ.setdefault(f"JSII_SILENCE_WARNING_{name}_NODE_VERSION", "1")
    if major.isdigit():
        environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", major)


def main() -> None:
    """Synthesize into CDK_OUTDIR, or say (first, and only) which context is missing or wrong."""
    try:
        from alquimista_deploy.context import ContextError, from_context, read_context

        try:
            from_context(read_context(os.environ))
        except ContextError as exc:
            raise SystemExit(f"error: {exc}") from None
        quiet_node(os.environ)
        import aws_cdk as cdk  # jsii starts node here
        from alquimista_deploy.stack import define
    except ModuleNotFoundError as exc:
        raise SystemExit(f"error: {exc.name} is not installed for {sys.executable}: "
                         f"{SETUP}") from None

    app = cdk.App()
    try:
        define(app)
    except ContextError as exc:
        raise SystemExit(f"error: {exc}") from None
    app.synth()


if __name__ == "__main__":
    main()
