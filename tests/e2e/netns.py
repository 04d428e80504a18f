"""Several "hosts" on one machine: network namespaces on a private bridge.

``several_hosts(n)`` creates a bridge in the root namespace with the subnet's first
address (the "gateway": where the hosts reach this machine's PostgreSQL and Redis, through
proxies listening there) and ``n`` namespaces, each joined to the bridge by a veth pair
and given an address of its own, ``10.231.<k>.11``, ``.12``, ... (``<k>`` is picked so
that no other network on the machine uses the subnet). Programs run in a namespace with
``ip netns exec`` (``Host.wrapper``); ``Host.cut()`` takes the host's link down, as a
machine losing its network: its packets go nowhere, nothing is refused.

Everything created is deleted at the end, even on failure. Names carry this process's
id (``chatlb-<pid>-<i>``, bridge ``clb<pid>b``), so the leftovers of a test process that
was killed outright are swept by the next run.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

SUBNET_PREFIX = "10.231"
_NAMESPACE = re.compile(r"chatlb-(\d+)-\d+")
_BRIDGE = re.compile(r"clb(\d+)b")


def _ip(*args: str, namespace: str | None = None) -> str:
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's ip is missing"
    try:
        _ip("netns", "list")
    except RuntimeError as exc:
        return f"ip netns does not work here: {exc}"
    return None


def require_namespaces() -> None:
    """Skips without root or ``ip netns``; on CI (root) that is a failure."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(reason)
    pytest.skip(reason)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers() -> None:
    """Delete the namespaces and bridges of test processes that no longer run."""
    for line in _ip("netns", "list").splitlines():
        match = _NAMESPACE.fullmatch(line.split()[0]) if line.strip() else None
        if match and not _alive(int(match.group(1))):
            _ip("netns", "delete", match.group(0))
    for line in _ip("-o", "link", "show", "type", "bridge").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        match = _BRIDGE.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            _ip("link", "delete", name)


def _delete_link_if_present(name: str) -> None:
    with contextlib.suppress(RuntimeError):  # gone with its namespace already
        _ip("link", "delete", name)


def _free_subnet() -> str:
    """``10.231.<k>`` with no address or route of the machine in it."""
    used = _ip("-4", "-o", "addr", "show") + _ip("-4", "route", "show", "table", "all")
    free = [k for k in range(1, 255) if f"{SUBNET_PREFIX}.{k}." not in used]
    if not free:
        raise RuntimeError(f"every {SUBNET_PREFIX}.<k>.0/24 is in use")
    return f"{SUBNET_PREFIX}.{random.choice(free)}"


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str
    link: str  # the root namespace's end of its veth pair, on the bridge

    @property
    def wrapper(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def cut(self) -> None:
        """Off the network: the link goes down, packets to and from it are lost."""
        _ip("link", "set", self.link, "down")


@dataclass(frozen=True)
class Network:
    gateway: str  # this machine's address on the bridge
    hosts: list[Host]


@contextlib.contextmanager
def several_hosts(count: int) -> Iterator[Network]:
    require_namespaces()
    sweep_leftovers()
    pid = os.getpid()
    subnet = _free_subnet()
    bridge = f"clb{pid}b"
    with contextlib.ExitStack() as cleanup:
        _ip("link", "add", bridge, "type", "bridge")
        cleanup.callback(_ip, "link", "delete", bridge)
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        hosts = []
        for index in range(count):
            namespace = f"chatlb-{pid}-{index}"
            link, inner = f"clb{pid}h{index}", f"clb{pid}n{index}"
            _ip("netns", "add", namespace)
            # Deleting the namespace deletes its veth pair too.
            cleanup.callback(_ip, "netns", "delete", namespace)
            _ip("link", "add", link, "type", "veth", "peer", "name", inner)
            cleanup.callback(_delete_link_if_present, link)
            _ip("link", "set", inner, "netns", namespace)
            _ip("link", "set", link, "master", bridge, "up")
            address = f"{subnet}.{11 + index}"
            _ip("addr", "add", f"{address}/24", "dev", inner, namespace=namespace)
            _ip("link", "set", inner, "up", namespace=namespace)
            _ip("link", "set", "lo", "up", namespace=namespace)
            hosts.append(Host(namespace, address, link))
        yield Network(f"{subnet}.1", hosts)
