"""`cdk synth` runs app.py from deploy/cdk, which puts that folder first on the path: so do
the tests here, before any of them imports alquimista_deploy."""

import sys
from pathlib import Path

CDK_APP = Path(__file__).resolve().parents[2] / "deploy" / "cdk"
if str(CDK_APP) not in sys.path:
    sys.path.insert(0, str(CDK_APP))
