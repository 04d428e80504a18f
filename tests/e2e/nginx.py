"""nginx in front of real chat server processes, with the checked-in site file.

``Nginx`` runs Debian's nginx binary with a main configuration of its own in a temporary
folder (pid file, logs and temporary files there; never /etc/nginx/nginx.conf) that
includes deploy/nginx/chat.conf as ``deploy.nginx.render`` renders it: only the listen
port, the chat processes' addresses, the default zone and the log folder are filled in.

The ``load_balanced`` fixture starts chat processes (three on the production
configuration, which share PostgreSQL and Redis; one on the embedded one, where
processes share nothing) and nginx in front of them, and stops all of them by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.chaos.clients import ClientSettings
from bench.chaos.workload import Workload
from bench.targets import OwnedProcess, wait_ready
from chat.registry.redis import RedisRegistry
from deploy.nginx.render import render

from .conftest import ServerProcess, _free_port

MAIN_CONF = """\
# The tests' nginx: everything it writes stays in {workdir}.
{user}worker_processes 2;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;  # the site logs to {workdir}/chat-access.log
    client_body_temp_path {workdir}/temp/body;
    proxy_temp_path {workdir}/temp/proxy;
    fastcgi_temp_path {workdir}/temp/fastcgi;
    uwsgi_temp_path {workdir}/temp/uwsgi;
    scgi_temp_path {workdir}/temp/scgi;
    include {workdir}/chat.conf;
}}
"""


def nginx_binary() -> str:
    """Debian's nginx (scripts/lib.sh, ``ensure_nginx``); skips locally, fails on CI."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        message = "nginx is missing: apt-get install -y nginx-light (scripts/test does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Nginx(OwnedProcess):
    stop_grace = 10.0

    def __init__(
        self, workdir: Path, servers: Sequence[str], *, zone: str = "", port: int = 0
    ) -> None:
        self.workdir = workdir
        self.servers = list(servers)
        self.zone = zone
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def write_config(self) -> Path:
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)
        site = render(
            self.servers,
            listen=f"127.0.0.1:{self.port}",
            zone=self.zone,
            log_dir=str(self.workdir),
        )
        (self.workdir / "chat.conf").write_text(site)
        main = self.workdir / "nginx.conf"
        # As root, nginx's workers would run as "nobody", who cannot enter pytest's
        # private temporary folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        main.write_text(MAIN_CONF.format(workdir=self.workdir, user=user))
        return main

    def command(self, *args: str) -> list[str]:
        main = self.workdir / "nginx.conf"
        error_log = self.workdir / "error.log"
        prefix = ["-p", str(self.workdir), "-c", str(main), "-e", str(error_log)]
        return [nginx_binary(), *prefix, *args]

    def start(self) -> None:
        self.write_config()
        checked = subprocess.run(self.command("-t", "-q"), capture_output=True, check=False)
        assert checked.returncode == 0, checked.stderr.decode()
        with (self.workdir / "nginx.out").open("ab") as out:
            # A session of its own: kill() takes the workers down with the master.
            self.process = subprocess.Popen(
                self.command("-g", "daemon off;"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Ready once a chat process answers through it (502 until then).
        wait_ready(self.url + "/healthz", self.process, self.workdir / "error.log")

    def kill(self) -> None:
        """SIGKILL to the master and its workers (a killed master leaves them running)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None


def start_servers(servers: Sequence[ServerProcess]) -> None:
    """The first migrates; the others then start side by side."""
    servers[0].start()
    for server in servers[1:]:
        server.spawn(migrate=False)
    for server in servers[1:]:
        server.wait_ready()


def several_processes() -> bool:
    """Processes share state (PostgreSQL and Redis) only on the production configuration."""
    return bool(os.environ.get("REDIS_URL"))


@dataclass
class Balanced:
    nginx: Nginx
    servers: list[ServerProcess]

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def ws_url(self) -> str:
        return self.nginx.ws_url


# What every balanced cluster's processes get unless the test's environment says otherwise.
BALANCED_ENV = {
    # One proxy in front: the client address is the one nginx saw.
    "NUM_PROXIES": "1",
    # Tests sign up many users, all from 127.0.0.1.
    "THROTTLE_SIGNUP": "1000/hour",
    "THROTTLE_LOGIN": "1000/min",
    # Stopping at the end need not wait for clients to leave.
    "DRAIN_TIMEOUT": "2",
}


@contextlib.contextmanager
def balanced(
    env: dict[str, str],
    workdir: Path,
    count: int | None = None,
    *,
    zone: str = "",
    server_envs: Sequence[dict[str, str]] = (),
) -> Iterator[Balanced]:
    """``count`` chat processes (3 on production, 1 embedded by default), the i-th with
    ``server_envs[i]`` added to ``env``, and nginx in front with default client zone
    ``zone``; everything stopped by PID at the end."""
    count = count or (3 if several_processes() else 1)
    started: list[OwnedProcess] = []
    nginx = Nginx(workdir / "nginx", [], zone=zone)
    # Clients reach the processes only through nginx: every process advertises its URL.
    env = {"CHAT_SERVER_WS_URL": nginx.ws_url, **BALANCED_ENV, **env}
    try:
        servers = [
            ServerProcess(
                {**env, **(server_envs[i] if i < len(server_envs) else {})},
                workdir / f"balanced-server{i}.log",
            )
            for i in range(count)
        ]
        started.extend(servers)
        start_servers(servers)
        nginx.servers = [server.address for server in servers]
        started.append(nginx)
        nginx.start()
        yield Balanced(nginx, servers)
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture
def load_balanced(server_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Balanced]]:
    """``load_balanced(count=None, *, zone="", server_envs=())``: see ``balanced``, with
    the test's ``server_env`` as it is when called."""
    with contextlib.ExitStack() as stack:

        def start(
            count: int | None = None,
            *,
            zone: str = "",
            server_envs: Sequence[dict[str, str]] = (),
        ) -> Balanced:
            return stack.enter_context(
                balanced(server_env, tmp_path, count, zone=zone, server_envs=server_envs)
            )

        yield start


def devices_through(front_url: str, ws_url: str, *, group_size: int, seed: int) -> Workload:
    """Six users with one device each, who know only the balancer's address: a direct
    conversation with the next user, one group of ``group_size``; a device that gets no
    pong within 2 s of a ping (after 1 s of silence) reconnects."""
    return Workload(
        [front_url],
        [ws_url],
        users=6,
        devices_per_user=1,
        groups=1,
        group_size=group_size,
        rate=10,
        seed=seed,
        settings=ClientSettings(ping_idle=1.0, pong_timeout=2.0),
    )


def pid_of(server_id: str | None) -> int | None:
    """The process id in a registry server id (``<host name>:<pid>:<random>``)."""
    return int(server_id.split(":")[-2]) if server_id else None


def sockets_per_process(registry: RedisRegistry) -> dict[int | None, int]:
    """Open sockets of each live process (by process id), as the processes report them."""
    return {
        pid_of(record.server_id): record.connections for record in registry.live(now=time.time())
    }


async def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    if not await Workload.wait_for(condition, timeout):
        raise AssertionError(f"{what} within {timeout:.0f} s")
