"""Which Web Push endpoints the server may contact, and an HTTP session that contacts only
those.

A Web Push endpoint is a URL that a client hands us and that the server then POSTs to:
left unchecked, any user could make the server open connections to itself, to its private
network or to a cloud metadata service (server-side request forgery). One policy is
applied twice:

* at registration (:func:`check_subscription`), so a client learns at once that an
  endpoint will never be used;
* at every send (:func:`session`), because DNS can change after registration: the
  session's adapter resolves the host once, checks every address of the answer, and makes
  urllib3 connect to the first of them, never to the name (which it would resolve again).
  TLS still uses the name, for SNI and for certificate verification. Redirects are never
  followed.

The policy: https only; a host name, not an IP literal; no address of the name may be
loopback, private, link-local, multicast, unspecified, reserved or otherwise not globally
routable (IPv4 addresses embedded in IPv6 ones are judged as IPv4). ``PUSH_ENDPOINT_HOSTS``
narrows it to the listed push services. ``PUSH_ALLOW_HTTP_ENDPOINTS`` (local test receivers
only; a deploy check warns) allows plain http, IP literals and loopback or private
addresses.

requests-hardened does the same pinning through the same public requests hook, but it
checks only the first address of an answer and can only allow loopback; the policy here is
ours, so is the adapter (a few lines).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.http.request import validate_host
from requests.adapters import HTTPAdapter
from urllib3.util.connection import allowed_gai_family

from chatproject.errors import ServiceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ENDPOINT_FIELD = "subscription.endpoint"
# NAT64 (RFC 6052): the last 32 bits are the IPv4 address the gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class InvalidSubscription(ServiceError):
    code = "invalid_push_subscription"


class UnsafeEndpoint(requests.RequestException):
    """The endpoint is one the server must not contact (raised at send time)."""


class UnresolvableEndpoint(requests.exceptions.ConnectionError):
    """The endpoint's host does not resolve now: like a refused connection."""


@dataclass(frozen=True, slots=True)
class _Target:
    host: str  # lower case, no brackets, no trailing dot
    port: int
    literal: IPAddress | None  # the host, when it is an IP address


def _allow_local() -> bool:
    return bool(settings.PUSH_ALLOW_HTTP_ENDPOINTS)


def _target(url: str) -> _Target:
    """The scheme, host and allow-list rules; raises UnsafeEndpoint."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _allow_local()):
        raise UnsafeEndpoint("A push endpoint must be an https URL.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeEndpoint("A push endpoint must name a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeEndpoint("A push endpoint's port is invalid.") from exc
    allowed = settings.PUSH_ENDPOINT_HOSTS
    if allowed and not validate_host(host, allowed):
        raise UnsafeEndpoint("This server does not push to that host (PUSH_ENDPOINT_HOSTS).")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not _allow_local():
        raise UnsafeEndpoint("A push endpoint must name a push service, not an IP address.")
    return _Target(host, port, literal)


# What each kind of address is called in the refusal, in the order they are tested.
_ALWAYS_REFUSED = (
    ("is_multicast", "a multicast address"),
    ("is_unspecified", "the unspecified address"),
)
_LOCAL = (
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)


def _address_problem(address: IPAddress) -> str | None:
    """Why the server must not connect to ``address``, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        address = embedded or address
    kinds = _ALWAYS_REFUSED if _allow_local() else _ALWAYS_REFUSED + _LOCAL
    problem = next((reason for flag, reason in kinds if getattr(address, flag)), None)
    if problem is None and not _allow_local() and not address.is_global:
        problem = "an address that is not publicly routable"  # e.g. 100.64.0.0/10 (CGNAT)
    return problem


def _checked_addresses(target: _Target) -> list[str]:
    """Every address the host has now, all of them allowed (else UnsafeEndpoint).
    ``socket.gaierror`` when it does not resolve."""
    if target.literal is not None:
        answers = [str(target.literal)]
    else:
        infos = socket.getaddrinfo(
            target.host, target.port, family=allowed_gai_family(), type=socket.SOCK_STREAM
        )
        answers = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for answer in answers:
        # A scoped IPv6 answer ("fe80::1%eth0") is link-local whatever its scope.
        problem = _address_problem(ipaddress.ip_address(answer.split("%", 1)[0]))
        if problem is not None:
            raise UnsafeEndpoint(f"The push endpoint's host resolves to {problem}.")
    if not answers:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return answers


def check_subscription(endpoint: str, *, p256dh: str, auth: str) -> None:
    """Registration: refuse a subscription that the sender would refuse, as far as can be
    known now. A host that does not resolve at the moment is accepted: there is nothing to
    connect to, and every send checks it again."""
    if not (p256dh and auth):
        raise InvalidSubscription(
            "A Web Push subscription needs its p256dh and auth keys.",
            fields={"subscription.keys": ["p256dh and auth are required."]},
        )
    try:
        _checked_addresses(_target(endpoint))
    except UnsafeEndpoint as exc:
        raise InvalidSubscription(str(exc), fields={ENDPOINT_FIELD: [str(exc)]}) from exc
    except (socket.gaierror, UnicodeError):
        pass


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address checked for the request's URL, with the URL's host name for
    TLS (SNI, certificate) and in the Host header."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        url = str(request.url)
        target = _target(url)
        try:
            address = _checked_addresses(target)[0]
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableEndpoint(f"{target.host} does not resolve: {exc}") from exc
        request.headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = target.host
            pool_kwargs["assert_hostname"] = target.host
        host_params["host"] = f"[{address}]" if ":" in address else address
        return host_params, pool_kwargs


class _NoRedirectSession(requests.Session):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # A push service answers a push itself; a redirect is a refusal (and could point
        # anywhere). Every connection goes through the adapter's check in any case.
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def session() -> requests.Session:
    """A requests session for Web Push sends: every connection is checked and pinned."""
    pinned = _NoRedirectSession()
    adapter = _PinnedAdapter()
    pinned.mount("https://", adapter)
    pinned.mount("http://", adapter)
    return pinned
