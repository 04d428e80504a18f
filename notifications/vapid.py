"""The server's VAPID key pair (RFC 8292), which signs every Web Push request.

Browsers bind a push subscription to the public key they were given
(``applicationServerKey``), so the key must stay the same for as long as subscriptions
live: it comes from ``VAPID_PRIVATE_KEY`` or is generated once into
``DATA_DIR/vapid_private_key.pem`` and kept. Every process that sends pushes (the server
processes and the Celery workers) must see the same key.
"""

from __future__ import annotations

import base64
import os
import threading
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from py_vapid import Vapid

KEY_FILE_NAME = "vapid_private_key.pem"
_lock = threading.Lock()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_configured(value: str) -> Vapid:
    # Accept what the usual generators print: a PEM file's text, or base64url of the raw
    # 32-byte private number (web-push's generateVAPIDKeys) or of a DER key.
    text = value.strip().replace("\\n", "\n")
    if text.startswith("-----BEGIN"):
        return Vapid.from_pem(text.encode())
    return Vapid.from_string(text)


def _load_or_create_file(path: Path) -> Vapid:
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_bytes(pem)
        temporary.chmod(0o600)
        try:
            # link() fails if another process created the key first; theirs wins, so all
            # processes sharing DATA_DIR end up with the same key.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return Vapid.from_pem(path.read_bytes())


@cache
def server_key() -> Vapid:
    with _lock:
        if settings.VAPID_PRIVATE_KEY:
            vapid = _load_configured(settings.VAPID_PRIVATE_KEY)
        else:
            vapid = _load_or_create_file(Path(settings.DATA_DIR) / KEY_FILE_NAME)
    if settings.VAPID_PUBLIC_KEY and _public_key_of(vapid) != settings.VAPID_PUBLIC_KEY:
        raise ImproperlyConfigured("VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY.")
    return vapid


def _public_key_of(vapid: Vapid) -> str:
    point: bytes = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def public_key() -> str:
    """The public key as browsers want it for ``applicationServerKey``: base64url of the
    uncompressed P-256 point (65 bytes)."""
    return _public_key_of(server_key())
