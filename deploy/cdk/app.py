"""CDK app (`cdk synth` runs it): check the context, define the runner's stack, synthesize.

The context is checked before aws_cdk is imported: jsii starts node at that import, and
node may print a banner (an untested or end-of-life version) that would bury the error.
"""

from __future__ import annotations

import os

from alquimista_deploy.context import ContextError, from_context, read_context


def main() -> None:
    """Synthesize into CDK_OUTDIR, or say (first, and only) which context is missing or wrong."""
    try:
        from_context(read_context(os.environ))
    except ContextError as exc:
        raise SystemExit(f"error: {exc}") from None
    import aws_cdk as cdk  # jsii starts node here
    from alquimista_deploy.stack import define

    app = cdk.App()
    try:
        define(app)
    except ContextError as exc:
        raise SystemExit(f"error: {exc}") from None
    app.synth()


if __name__ == "__main__":
    main()
