"""Web Push endpoints are URLs chosen by clients, and the server POSTs to them: nothing a
user registers may make the server connect to itself, to its private network or to a
metadata service, at registration or later when DNS has changed.

A TLS receiver on 127.0.0.1 (tests/notifications/receivers.py) counts every connection it
accepts, so "never contacted" is observed, not inferred. Name resolution is answered at the
``socket.getaddrinfo`` level for test names only (what both our code and urllib3 resolve
through); no test connects anywhere but to loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.checks import run_checks

from notifications import payloads, tasks

from . import tls
from .conftest import Phone, settle
from .receivers import PushServices, Subscription

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Message.token is deprecated"),
]

PhoneFactory = Callable[..., Phone]
TLS_NAME = "push.example.test"
# A public address for names that are only registered, never sent to (no test connects to
# anything but loopback).
PUBLIC_ADDRESS = "93.184.215.14"


class FakeDns:
    """Answers for the names a test sets; every other name goes to the real resolver."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self._real = real
        self._answers: dict[str, deque[list[str] | None]] = {}
        self.lookups: Counter[str] = Counter()

    def answer(self, name: str, *answers: list[str] | None) -> None:
        """Successive lookups of ``name`` get these answers, the last one from then on
        (None: the name does not resolve)."""
        self._answers[name] = deque(answers)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        queue = self._answers.get(name.rstrip(".").lower())
        if queue is None:
            return list(self._real(host, port, *args, **kwargs))
        family = kwargs.get("family", args[0] if args else 0)
        self.lookups[name] += 1
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        number = int(port or 0)
        results: list[tuple[Any, ...]] = []
        for address in answer:
            if ipaddress.ip_address(address).version == 6 and family != socket.AF_INET:
                results.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, number, 0, 0))
                )
            elif ipaddress.ip_address(address).version == 4 and family != socket.AF_INET6:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, number)))
        return results


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(scope="session")
def tls_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PushServices, str]]:
    context, ca_file = tls.issue(tmp_path_factory.mktemp("tls"), TLS_NAME)
    service = PushServices(tls=context, name=TLS_NAME)
    service.start()
    yield service, str(ca_file)
    service.stop()


@pytest.fixture
def tls_push(tls_service: tuple[PushServices, str], push_env: PushServices) -> PushServices:
    """A Web Push service at https://push.example.test:<port> (listening on 127.0.0.1),
    with a certificate for that name only."""
    service, _ = tls_service
    service.reset()
    service.vapid_public_key = push_env.vapid_public_key
    return service


@pytest.fixture
def trusted_ca(tls_service: tuple[PushServices, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's HTTP clients trust the test CA (a worker process does not)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_service[1])


def _register(device: Phone, endpoint: str | Subscription) -> Any:
    """POST a subscription with real keys (the sender encrypts before it connects)."""
    browser = (
        endpoint
        if isinstance(endpoint, Subscription)
        else Subscription("browser", endpoint, ec.generate_private_key(ec.SECP256R1()), b"1" * 16)
    )
    return device.api.post(
        "/api/v1/push/registrations",
        {"kind": "webpush", "subscription": browser.as_json()},
        format="json",
    )


def _send_now(registration_id: int) -> dict[str, int]:
    """Run one push_send task in this process (where the fake DNS and trusted CA apply),
    on both configurations."""
    payload = dict(payloads.clear_push(conversation_id=1, last_read_id=1, badge=0))
    result: dict[str, int] = tasks.push_send.apply(
        args=("webpush", [[registration_id, None, payload]], 1)
    ).get()
    return result


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(("https://127.0.0.1:{port}/wp/x", None), id="loopback-ip"),
        pytest.param(("https://169.254.169.254/latest/meta-data/", None), id="metadata-ip"),
        pytest.param(("https://[::1]:{port}/wp/x", None), id="ipv6-loopback"),
        pytest.param(("https://10.0.0.1/wp/x", None), id="private-ip"),
        pytest.param(("https://[::ffff:127.0.0.1]:{port}/wp/x", None), id="ipv4-mapped-ip"),
        pytest.param(
            ("https://93.184.215.14/wp/x", None), id="public-ip-literal"
        ),  # an IP literal, even a public one
        pytest.param(
            ("https://localhost:{port}/wp/x", None), id="localhost"
        ),  # the real resolver: 127.0.0.1
        pytest.param(
            ("https://rebind.example.test:{port}/wp/x", ["10.1.2.3"]), id="name-to-private"
        ),
        pytest.param(
            ("https://mixed.example.test:{port}/wp/x", [PUBLIC_ADDRESS, "127.0.0.1"]),
            id="name-with-one-loopback-answer",
        ),
        pytest.param(
            ("https://mapped.example.test:{port}/wp/x", ["::ffff:192.168.1.1"]),
            id="name-to-ipv4-mapped-private",
        ),
        pytest.param(
            ("https://metadata.example.test/wp/x", ["fd00:ec2::254"]),
            id="name-to-ipv6-unique-local",
        ),
        pytest.param(
            ("https://zero.example.test:{port}/wp/x", [str(ipaddress.IPv4Address(0))]),
            id="name-to-unspecified",
        ),
        pytest.param(("https://cgnat.example.test/wp/x", ["100.64.0.1"]), id="name-to-cgnat"),
        pytest.param(
            ("https://multicast.example.test/wp/x", ["224.0.0.251"]), id="name-to-multicast"
        ),
    ],
)
def test_local_private_and_metadata_endpoints_are_refused_at_registration(
    phone: PhoneFactory,
    tls_push: PushServices,
    dns: FakeDns,
    settings: Any,
    case: tuple[str, list[str] | None],
) -> None:
    endpoint, records = case
    settings.PUSH_ALLOW_HTTP_ENDPOINTS = False  # the default
    if records is not None:
        dns.answer(str(urlsplit(endpoint).hostname), records)
    bob = phone("bob", "browser", platform="web")

    response = _register(bob, endpoint.format(port=tls_push.port))

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_push_subscription"
    assert list(error["fields"]) == ["subscription.endpoint"]
    assert bob.api.get("/api/v1/push/registrations").json() == []
    assert tls_push.connections == 0


def test_public_push_services_are_accepted_and_the_allow_list_narrows_them(
    phone: PhoneFactory, dns: FakeDns, settings: Any
) -> None:
    settings.PUSH_ALLOW_HTTP_ENDPOINTS = False
    for name in ("updates.push.services.mozilla.com", "fcm.googleapis.com", "evil.example.test"):
        dns.answer(name, [PUBLIC_ADDRESS])
    dns.answer("push.services.mozilla.com.evil.example.test", [PUBLIC_ADDRESS])
    dns.answer("not-yet.example.test", None)
    bob = phone("bob", "browser", platform="web")

    assert _register(bob, "https://evil.example.test/wp/1").status_code == 201
    # Not resolvable now: nothing to connect to; it is checked again at every send.
    assert _register(bob, "https://not-yet.example.test/wp/1").status_code == 200

    settings.PUSH_ENDPOINT_HOSTS = [".push.services.mozilla.com", "fcm.googleapis.com"]
    for allowed in (
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://fcm.googleapis.com/fcm/send/abc",
    ):
        assert _register(bob, allowed).status_code == 200, allowed
    for refused in (
        "https://evil.example.test/wp/1",
        "https://push.services.mozilla.com.evil.example.test/wp/1",
    ):
        response = _register(bob, refused)
        assert response.status_code == 400, refused
        assert "subscription.endpoint" in response.json()["error"]["fields"]
    (registration,) = bob.api.get("/api/v1/push/registrations").json()
    assert registration["address"] == "https://fcm.googleapis.com/fcm/send/abc"


def test_an_endpoint_whose_dns_moved_to_loopback_is_never_contacted(
    phone: PhoneFactory, tls_push: PushServices, dns: FakeDns, settings: Any
) -> None:
    settings.PUSH_ALLOW_HTTP_ENDPOINTS = False
    dns.answer(TLS_NAME, [PUBLIC_ADDRESS])
    bob = phone("bob", "browser", platform="web")
    registered = _register(bob, tls_push.new_subscription("bob-web"))
    assert registered.status_code == 201, registered.content

    dns.answer(TLS_NAME, ["127.0.0.1"])  # the attacker's DNS now points at the server itself
    counts = _send_now(registered.json()["id"])

    assert tls_push.connections == 0
    assert counts["gone"] == 1
    assert bob.api.get("/api/v1/push/registrations").json() == []  # never tried again


def test_a_loopback_endpoint_from_a_test_setup_is_not_contacted_once_the_setting_is_off(
    phone: PhoneFactory, tls_push: PushServices, settings: Any
) -> None:
    bob = phone("bob", "browser", platform="web")
    registered = _register(bob, f"https://127.0.0.1:{tls_push.port}/wp/bob")
    assert registered.status_code == 201, registered.content  # PUSH_ALLOW_HTTP_ENDPOINTS on

    settings.PUSH_ALLOW_HTTP_ENDPOINTS = False
    _send_now(registered.json()["id"])

    assert tls_push.connections == 0


@pytest.mark.usefixtures("trusted_ca")
def test_the_sender_connects_to_the_address_it_checked_with_sni_and_certificate_of_the_name(
    phone: PhoneFactory, tls_push: PushServices, dns: FakeDns
) -> None:
    # Loopback is allowed here (PUSH_ALLOW_HTTP_ENDPOINTS, as in every push test). The
    # second answer is an address where nothing listens: a client that resolved the name
    # again after the check would connect there and fail.
    bob = phone("bob", "browser", platform="web")
    subscription = tls_push.new_subscription("bob-web")
    dns.answer(TLS_NAME, ["127.0.0.1"])
    registered = _register(bob, subscription)
    assert registered.status_code == 201, registered.content
    dns.answer(TLS_NAME, ["127.0.0.1"], ["127.0.0.2"])
    dns.lookups.clear()

    counts = _send_now(registered.json()["id"])

    assert counts["sent"] == 1
    (push,) = tls_push.pushes("bob-web")  # decrypted and VAPID-checked by the receiver
    assert push.payload["type"] == "clear"
    assert push.headers["host"] == f"{TLS_NAME}:{tls_push.port}"
    assert tls_push.server_names == [TLS_NAME]  # SNI: the name, not the address
    assert dns.lookups[TLS_NAME] == 1


def test_an_endpoint_that_never_completes_a_tls_handshake_is_retried_once_then_dropped(
    phone: PhoneFactory, push_env: PushServices, tls_push: PushServices
) -> None:
    # The receiver's certificate is for push.example.test, not for 127.0.0.1 (and its CA
    # is not trusted): every handshake fails, as with a host that is not a push service.
    alice = phone("alice")
    bob = phone("bob", "browser", platform="web")
    registered = _register(bob, f"https://127.0.0.1:{tls_push.port}/wp/bob")
    assert registered.status_code == 201, registered.content

    alice.send(alice.direct_with(bob.user), "hello?")

    _wait_until(lambda: tls_push.connections >= 2)
    settle()
    assert tls_push.connections == 2  # the first attempt and one retry, not PUSH_MAX_ATTEMPTS
    assert tls_push.pushes() == []
    assert len(bob.api.get("/api/v1/push/registrations").json()) == 1  # our network may be down


def test_redirects_from_a_push_endpoint_are_not_followed(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    bob = phone("bob", "browser", platform="web")
    bob.register_webpush(push_env.new_subscription("bob-web"))
    elsewhere = push_env.new_subscription("elsewhere")
    push_env.fail_next("bob-web", (307, elsewhere.endpoint))

    alice.send(alice.direct_with(bob.user), "where to?")

    _wait_until(lambda: len(push_env.attempts["bob-web"]) >= 1)
    settle()
    assert push_env.attempts["elsewhere"] == []
    assert push_env.pushes() == []
    assert len(push_env.attempts["bob-web"]) == 1  # a redirect is a refusal, not retried


def test_deploy_check_warns_while_local_push_endpoints_are_allowed(settings: Any) -> None:
    def warnings() -> set[str]:
        return {m.id for m in run_checks(include_deployment_checks=True) if m.id}

    settings.PUSH_ALLOW_HTTP_ENDPOINTS = True
    assert "chatproject.W002" in warnings()
    settings.PUSH_ALLOW_HTTP_ENDPOINTS = False
    assert "chatproject.W002" not in warnings()


def _wait_until(condition: Callable[[], Any], timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)
