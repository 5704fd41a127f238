"""`cdk synth` runs app.py from deploy/cdk, which puts that folder first on the path: so do
the tests here, before any of them imports alquimista_deploy."""

import sys
from pathlib import Path

CDK_APP = Path(__file__).resolve().parents[2] / "deploy" / "cdk"
if str(CDK_APP) not in sys.path:
    sys.path.insert(0, str(CDK_APP))

# Before any test imports aws_cdk (jsii starts node then): no node-version banner.
import os  # noqa: E402

from app import quiet_node  # noqa: E402

quiet_node(os.environ)
