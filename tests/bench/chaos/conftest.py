"""The chaos workload's end-to-end tests run against the live servers tests/e2e starts."""

from tests.e2e.conftest import server_env, servers  # noqa: F401 (fixtures)
