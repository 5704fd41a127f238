"""CDK app (`cdk synth` runs it): read the context, define the runner's stack, synthesize."""

from __future__ import annotations

import aws_cdk as cdk
from alquimista_deploy.context import ContextError
from alquimista_deploy.stack import define


def main() -> None:
    """Synthesize into CDK_OUTDIR, or say which context is missing or wrong."""
    app = cdk.App()
    try:
        define(app)
    except ContextError as exc:
        raise SystemExit(f"error: {exc}") from exc
    app.synth()


if __name__ == "__main__":
    main()
