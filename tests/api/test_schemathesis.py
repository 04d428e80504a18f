"""Schemathesis against a live server (issue 11, item 15 (b)): generated requests for every
operation of /api/schema/ get no 5xx, no status the schema does not list, and no body that
violates it. Bounded: a few examples per operation, and a hard time limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess

from .conftest import sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# Operations that would log the fuzzing device out (then every later request is a 401):
# they have tests of their own in tests/accounts.
SELF_REVOKING = r"^/api/v1/(auth/logout|devices/\{device_id\})$"
# Log-in, sign-up and password change hash passwords on purpose slowly; the boundary-value
# phase would spend minutes there, so they get the random phase only.
PASSWORD_HASHING = r"^/api/v1/(auth/|devices/)"


def schemathesis(server: ServerProcess, token: str, *args: str, log: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        server.base_url + "/api/schema/?format=json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        # One worker: hypothesis' caches are not thread-safe (KeyErrors with several).
        "--workers",
        "1",
        "--seed",
        "11",
        "--no-color",
        "--warnings",
        "off",
        *args,
    ]
    with log.open("w") as output:
        # Run in the test's temp dir: schemathesis keeps a cache (.schemathesis/) in its cwd.
        result = subprocess.run(
            command,
            check=False,
            cwd=log.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    report = log.read_text()
    assert result.returncode == 0, (
        report[-20_000:] + "\n\nserver log:\n" + server.log.read_text()[-5000:]
    )


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    served: ServerProcess, tmp_path: Path
) -> None:
    token = sign_up(served, "fuzzer")
    # Boundary values (ids around 2**63, empty and oversized strings, wrong types) ...
    schemathesis(
        served,
        token,
        "--phases",
        "coverage",
        "--exclude-path-regex",
        PASSWORD_HASHING,
        log=tmp_path / "coverage.txt",
    )
    # ... then random requests to every operation.
    schemathesis(
        served,
        token,
        "--phases",
        "fuzzing",
        "--max-examples",
        "10",
        "--exclude-path-regex",
        SELF_REVOKING,
        log=tmp_path / "fuzzing.txt",
    )
    assert "Traceback" not in served.log.read_text()
