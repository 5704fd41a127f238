"""IAM database authentication: a fresh signed token per connection, no password read.

boto3 signs the tokens for real (generate_db_auth_token is local signing). What Aurora
does with them, checking the signature for a user granted rds_iam, is stood in for here:
the signer is wrapped so that each token it signs becomes the test role's password just
before the connection presents it. That proves the runner's side (a new token for every
connection, verify-full TLS, no secret, nothing shown), not AWS's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.connect import iam
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import AuthenticationFailed, ConfigurationError
from tests.support.helpers import LEAK_WATCH, TLS, Invoke, leaks
from tests.support.revisions import HEAD

ROLE = "iam_runner"


def test_an_iam_url_signs_a_new_token_at_every_read_and_never_shows_one() -> None:
    signed: list[str] = []

    def sign(host: str, port: int, user: str) -> str:
        signed.append(f"token-{len(signed)}-{host}:{port}/{user}")
        return signed[-1]

    url = iam.url_from_env({"DB_HOST": "db.example", "DB_NAME": "app", "DB_USER": "runner",
                            "DB_SSLROOTCERT": "/ca.pem"}, sign)
    assert [url.password, url.password] == ["token-0-db.example:5432/runner",
                                           "token-1-db.example:5432/runner"]
    shown = url.render_as_string() + repr(url) + str(url)
    assert "token-" not in shown
    assert url.query == {"sslmode": "verify-full", "sslrootcert": "/ca.pem"}
    assert "token-2" in url.render_as_string(hide_password=False)


@pytest.mark.parametrize("missing", ["DB_HOST", "DB_NAME", "DB_USER", "DB_SSLROOTCERT"])
def test_iam_needs_its_four_settings(missing: str) -> None:
    env = {"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u", "DB_SSLROOTCERT": "/ca.pem"}
    del env[missing]
    with pytest.raises(ConfigurationError, match=f"DB_AUTH=iam needs {missing}"):
        iam.url_from_env(env, lambda *a: "t")


def test_the_lambda_connects_with_tokens_and_no_secret(
        invoke: Invoke, head_url: URL, tls: TLS, monkeypatch: pytest.MonkeyPatch) -> None:
    with connect(head_url) as admin:
        admin.execute(text(f"CREATE ROLE {ROLE} LOGIN"))
        admin.execute(text(f'GRANT CONNECT ON DATABASE "{head_url.database}" TO {ROLE}'))
        admin.execute(text(f"GRANT SELECT ON alembic_version TO {ROLE}"))
        admin.commit()
    presented: list[str] = []
    real = iam.signer

    def standing_in_for_aurora(region: str | None, client: Any = None) -> Callable[..., str]:
        sign = real(region, client)

        def accepted(host: str, port: int, user: str) -> str:
            token = sign(host, port, user)
            LEAK_WATCH.add(token)
            presented.append(token)
            with connect(head_url) as admin:  # the role accepts exactly this token
                admin.exec_driver_sql(f"ALTER ROLE {ROLE} PASSWORD %(t)s", {"t": token})
                admin.commit()
            return token
        return accepted

    monkeypatch.setattr(iam, "signer", standing_in_for_aurora)
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    try:
        answer = invoke({"action": "current"}, env={
            "DB_AUTH": "iam", "DB_HOST": "localhost", "DB_PORT": str(head_url.port),
            "DB_NAME": str(head_url.database), "DB_USER": ROLE, "AWS_REGION": "sa-east-1"})
        assert (answer["status"], answer["revision"]) == ("success", HEAD), answer
        warm = invoke({"action": "current"})  # the same container: a new connection
        assert warm["status"] == "success", warm
        # one token signed for each connection (SigV4 signs to the second: two signed in the
        # same second are the same string, and both valid)
        assert len(presented) == 2
        assert presented[0].startswith("localhost:")
        assert "X-Amz-Signature=" in presented[0]
        assert "DBUser=iam_runner" in presented[0]
        assert not leaks(str(answer))
    finally:
        with connect(head_url) as admin:
            admin.execute(text(f"DROP OWNED BY {ROLE}"))
            admin.execute(text(f"DROP ROLE {ROLE}"))
            admin.commit()


def test_aws_credentials_that_cannot_load_fail_the_login_plainly(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    sign = iam.signer("sa-east-1")
    with pytest.raises(AuthenticationFailed, match=r"^the AWS credentials could not be "
                       r"loaded for RDS \(ProfileNotFound: "):
        sign("cluster.example", 5432, "migrator")
