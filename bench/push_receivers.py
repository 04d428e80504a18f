"""Local stand-ins for the push services, speaking their real protocols.

Used by the push tests (tests/notifications) and the fault-injection runner (bench/chaos).
One HTTP server (a thread in the calling process, a free port) plays:

* a **Web Push service** (RFC 8030) at ``/wp/<subscription>``: it checks the VAPID
  ``Authorization`` header (RFC 8292: ES256 JWT signed by the key in ``k=``, audience =
  this origin, expiry within 24 h, a contact subject, ``k`` = the server's published public
  key) and decrypts the ``aes128gcm`` body (RFC 8188/8291) with the subscription's private
  key and auth secret, implemented here from the RFCs with ``cryptography`` (not with the
  library that encrypted it);
* Google's **OAuth 2.0 token endpoint** at ``/token``: the service-account JWT bearer
  grant (RFC 7523), checking the assertion's RS256 signature with the test service
  account's public key;
* the **FCM HTTP v1 API** at ``/v1/projects/<project>/messages:send``: it accepts only
  access tokens issued by ``/token`` and records the request's ``message``.

Failures are injected per subscription or per FCM token: a queue of (status,
Retry-After) answers served before the normal success answer.

Given a server-side TLS context the same service listens with TLS (``https://<name>:port``,
the name its certificate is for). It counts every TCP connection it accepts, before any
handshake, and records the SNI names clients sent: what an endpoint that must never be
contacted would notice.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FCM_PROJECT = "chat-push-test"
# FCM v1 accepts tokens with either scope.
FCM_SCOPES = {
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
}
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(*, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


@dataclass
class Subscription:
    """A browser's push subscription: the key pair and auth secret stay on the "browser"."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def as_json(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` returns in a browser."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(self.public_bytes), "auth": b64url(self.auth_secret)},
        }

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 section 3.4 + RFC 8188 section 2 (one record, as every push fits in one)."""
        salt, record_size, id_length = body[:16], struct.unpack(">I", body[16:20])[0], body[20]
        server_public = body[21 : 21 + id_length]
        ciphertext = body[21 + id_length :]
        if id_length != 65:
            raise ValueError("keyid must be the application server's P-256 key")
        if len(ciphertext) > record_size:
            raise ValueError("expected a single record")
        shared = self.private_key.exchange(
            ec.ECDH(),
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), server_public),
        )
        key_info = b"WebPush: info\x00" + self.public_bytes + server_public
        ikm = _hkdf(salt=self.auth_secret, ikm=shared, info=key_info, length=32)
        cek = _hkdf(salt=salt, ikm=ikm, info=b"Content-Encoding: aes128gcm\x00", length=16)
        nonce = _hkdf(salt=salt, ikm=ikm, info=b"Content-Encoding: nonce\x00", length=12)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        content = padded.rstrip(b"\x00")
        if not content.endswith(b"\x02"):
            raise ValueError("the last record ends with the 0x02 delimiter")
        return content[:-1]


@dataclass
class Received:
    """One push the service accepted."""

    kind: str  # "webpush" or "fcm"
    target: str  # subscription name or FCM token
    payload: dict[str, Any]  # decrypted Web Push JSON, or the FCM message's data
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any] = field(default_factory=dict)  # FCM: the whole request body
    at: float = field(default_factory=time.monotonic)


class _CountingServer(ThreadingHTTPServer):
    """Counts accepted connections; with TLS, the handshake runs in the handler's thread."""

    def __init__(self, services: PushServices, tls: ssl.SSLContext | None) -> None:
        self.services = services
        self.tls = tls
        super().__init__(("127.0.0.1", 0), services._handler_class())

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        with self.services._lock:
            self.services.connections += 1
        if self.tls is not None:
            connection = self.tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                with self.services._lock:
                    self.services.failed_handshakes.append(repr(exc))
                return
        super().finish_request(request, client_address)


class PushServices:
    def __init__(self, *, tls: ssl.SSLContext | None = None, name: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self.connections = 0  # TCP connections accepted (before any TLS handshake)
        self.failed_handshakes: list[str] = []
        self.server_names: list[str] = []  # SNI sent by TLS clients
        if tls is not None:
            tls.sni_callback = self._record_server_name
        self._server = _CountingServer(self, tls)
        self.port = self._server.server_address[1]
        self.origin = f"{'https' if tls else 'http'}://{name}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.subscriptions: dict[str, Subscription] = {}
        self.received: list[Received] = []
        self.attempts: dict[str, list[float]] = defaultdict(list)  # target -> times
        self.rejected: list[str] = []  # requests refused for protocol violations, with why
        self._failures: dict[str, deque[tuple[int, str | None]]] = defaultdict(deque)
        self.vapid_public_key = ""  # the key the server publishes; set by the fixture
        self._issued_tokens: set[str] = set()
        self.token_requests = 0
        # The test service account (RS256 key pair) that firebase-admin authenticates as.
        self._account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = f"firebase-adminsdk@{FCM_PROJECT}.iam.gserviceaccount.com"
        self.credentials_file: Path | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record_server_name(self, _socket: Any, name: str | None, _context: Any) -> None:
        with self._lock:
            self.server_names.append(name or "")

    def reset(self) -> None:
        with self._lock:
            self.connections = 0
            self.failed_handshakes.clear()
            self.server_names.clear()
            self.subscriptions.clear()
            self.received.clear()
            self.attempts.clear()
            self.rejected.clear()
            self._failures.clear()

    def write_service_account(self, path: Path) -> Path:
        """The service-account JSON firebase-admin is given (FCM_CREDENTIALS_FILE); its
        token_uri points at this server."""
        pem = self._account_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.credentials_file = path
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": FCM_PROJECT,
                    "private_key_id": "test-key-1",
                    "private_key": pem,
                    "client_email": self.client_email,
                    "client_id": "1",
                    "token_uri": f"{self.origin}/token",
                }
            )
        )
        return path

    # --- test API --------------------------------------------------------------------------
    def new_subscription(self, name: str) -> Subscription:
        subscription = Subscription(
            name=name,
            endpoint=f"{self.origin}/wp/{name}-{secrets.token_hex(4)}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
        )
        with self._lock:
            self.subscriptions[subscription.endpoint.rsplit("/", 1)[1]] = subscription
        return subscription

    def fail_next(self, target: str, *answers: tuple[int, str | None]) -> None:
        """Answer the next requests for ``target`` (subscription name or FCM token) with these
        (status, Retry-After) before accepting; for a 3xx status the second item is the
        redirect's Location."""
        with self._lock:
            self._failures[target].extend(answers)

    def pushes(self, target: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if target is None or r.target == target]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.pushes()
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"push services never saw the expected pushes; got {self.pushes()}")

    # --- protocol checks -------------------------------------------------------------------
    def _next_failure(self, target: str) -> tuple[int, str | None] | None:
        with self._lock:
            self.attempts[target].append(time.monotonic())
            queue = self._failures.get(target)
            return queue.popleft() if queue else None

    def _check_vapid(self, authorization: str) -> str | None:
        """RFC 8292: returns a reason to refuse, or None."""
        if not authorization.startswith("vapid "):
            return "Authorization is not the vapid scheme"
        params = dict(
            part.strip().split("=", 1) for part in authorization[len("vapid ") :].split(",")
        )
        token, key = params.get("t", ""), params.get("k", "")
        if key != self.vapid_public_key:
            return "k is not the server's published VAPID public key"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return f"bad VAPID JWT: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "VAPID JWT expires more than 24 hours ahead"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return "VAPID sub is not a mailto: or https: contact"
        return None

    def _check_assertion(self, assertion: str) -> str | None:
        try:
            claims = jwt.decode(
                assertion,
                self._account_key.public_key(),
                algorithms=["RS256"],
                # google-auth always names Google's token endpoint as the audience (RFC 7523
                # 3: the authorization server), whatever token_uri it posts to.
                audience=GOOGLE_TOKEN_AUDIENCE,
            )
        except jwt.PyJWTError as exc:
            return f"bad service-account assertion: {exc}"
        if claims.get("iss") != self.client_email:
            return "assertion issuer is not the service account"
        if not FCM_SCOPES & set(str(claims.get("scope", "")).split()):
            return "assertion lacks a scope that FCM accepts"
        return None

    # --- HTTP ------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_PushRequestHandler,), {"services": self})


class _PushRequestHandler(BaseHTTPRequestHandler):
    """The receivers' HTTP side; ``services`` is the ``PushServices`` it records into."""

    services: PushServices

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any] | None = None, **headers: str) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, reason: str) -> None:
        with self.services._lock:
            self.services.rejected.append(f"{self.path}: {reason}")
        self._answer(status, {"error": {"code": status, "message": reason}})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/wp/"):
            self._web_push(self.path[len("/wp/") :], body)
        elif self.path == "/token":
            self._token(body)
        elif self.path == f"/v1/projects/{FCM_PROJECT}/messages:send":
            self._fcm(body)
        else:
            self._refuse(404, "unknown path")

    def _web_push(self, key: str, body: bytes) -> None:
        subscription = self.services.subscriptions.get(key)
        if subscription is None:
            self._refuse(404, "unknown subscription")
            return
        reason = self.services._check_vapid(self.headers.get("Authorization", ""))
        if reason is None and self.headers.get("Content-Encoding") != "aes128gcm":
            reason = "Content-Encoding is not aes128gcm"
        if reason is None and not self.headers.get("TTL", "").isdigit():
            reason = "TTL header missing"
        if reason is not None:
            self._refuse(403 if "VAPID" in reason or "vapid" in reason else 400, reason)
            return
        failure = self.services._next_failure(subscription.name)
        if failure is not None:
            status, value = failure
            name = "Location" if 300 <= status < 400 else "Retry_After"
            self._answer(status, None, **({name: value} if value else {}))
            return
        try:
            payload = json.loads(subscription.decrypt(body))
        except Exception as exc:  # noqa: BLE001 (any failure is a protocol violation)
            self._refuse(400, f"payload does not decrypt: {exc!r}")
            return
        with self.services._lock:
            self.services.received.append(
                Received(
                    "webpush",
                    subscription.name,
                    payload,
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
        self._answer(201, None, Location=f"{self.services.origin}/msg/{secrets.token_hex(4)}")

    def _token(self, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            self._refuse(400, "unsupported grant_type")
            return
        reason = self.services._check_assertion(form.get("assertion", ""))
        if reason is not None:
            self._refuse(400, reason)
            return
        token = f"ya29.test-{secrets.token_hex(8)}"
        with self.services._lock:
            self.services._issued_tokens.add(token)
            self.services.token_requests += 1
        self._answer(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _fcm(self, body: bytes) -> None:
        authorization = self.headers.get("Authorization", "")
        if authorization.removeprefix("Bearer ") not in self.services._issued_tokens:
            self._refuse(401, "access token not issued by the token endpoint")
            return
        request = json.loads(body)
        message = request.get("message", {})
        token = message.get("token", "")
        data = message.get("data", {})
        if not token or not all(isinstance(v, str) for v in data.values()):
            self._refuse(400, "message.token missing or data values not strings")
            return
        failure = self.services._next_failure(token)
        if failure is not None:
            self._fcm_error(*failure)
            return
        with self.services._lock:
            self.services.received.append(
                Received(
                    "fcm",
                    token,
                    data,
                    {k.lower(): v for k, v in self.headers.items()},
                    body=request,
                )
            )
        self._answer(200, {"name": f"projects/{FCM_PROJECT}/messages/{secrets.token_hex(6)}"})

    def _fcm_error(self, status: int, retry_after: str | None) -> None:
        # The error bodies FCM v1 returns (google.rpc.Status with an FcmError detail).
        status_name, fcm_code = {
            404: ("NOT_FOUND", "UNREGISTERED"),
            429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
            500: ("INTERNAL", "INTERNAL"),
            503: ("UNAVAILABLE", "UNAVAILABLE"),
        }[status]
        body = {
            "error": {
                "code": status,
                "message": status_name,
                "status": status_name,
                "details": [
                    {
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": fcm_code,
                    }
                ],
            }
        }
        extra = {"Retry_After": retry_after} if retry_after else {}
        self._answer(status, body, **extra)
