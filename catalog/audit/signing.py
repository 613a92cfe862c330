"""The trail's Ed25519 key, and DSSE envelopes signed with it (contracts section 8).

The key comes from HANDRAIL_TRAIL_SIGNING_KEY (a PEM private key, or the
base64 of its 32-byte seed). Without it (the demo), a key is made once and
kept under var/, as the Django secret key is. Every signature names its key
by id (the first 16 hex digits of the SHA-256 of the raw public key), so the
key can be rotated: HANDRAIL_TRAIL_PUBLIC_KEYS lists earlier public keys
(base64 of their 32 raw bytes, comma-separated), and a signature by a key
that is neither current nor listed is "unverifiable", which is not "tampered".
"""

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_ENV = "HANDRAIL_TRAIL_SIGNING_KEY"
PUBLIC_KEYS_ENV = "HANDRAIL_TRAIL_PUBLIC_KEYS"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@cache
def signing_key() -> Ed25519PrivateKey:
    """The current private key: from the environment, else the one kept under var/."""
    value = os.environ.get(KEY_ENV, "").strip()
    if value:
        return _private_key(value)
    path = settings.VAR_DIR / "trail_signing_key"
    if not path.exists():
        seed = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        path.write_text(base64.b64encode(seed).decode())
        path.chmod(0o600)
    return _private_key(path.read_text().strip())


def _private_key(value: str) -> Ed25519PrivateKey:
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(value, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ImproperlyConfigured(f"{KEY_ENV} is not an Ed25519 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{KEY_ENV} must be an Ed25519 key")
    return key


def public_key_pem() -> str:
    """The current public key as PEM SubjectPublicKeyInfo (what `trail_public_key` prints)."""
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def known_public_keys() -> dict[str, Ed25519PublicKey]:
    """The public keys signatures may name, by key id: the current one and the listed ones."""
    keys = {}
    for value in filter(None, (v.strip() for v in os.environ.get(PUBLIC_KEYS_ENV, "").split(","))):
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(value, validate=True))
        except (ValueError, binascii.Error) as exc:
            message = f"{PUBLIC_KEYS_ENV}: {value!r} is not an Ed25519 public key: {exc}"
            raise ImproperlyConfigured(message) from None
        keys[key_id(key)] = key
    current = signing_key().public_key()
    keys[key_id(current)] = current
    return keys


def envelope_sign(payload_type: str, payload: bytes) -> dict:
    """A DSSE envelope of `payload`, signed with the current key."""
    key = signing_key()
    signature = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {"keyid": key_id(key.public_key()), "sig": base64.b64encode(signature).decode()}
        ],
    }


@dataclass(frozen=True)
class Checked:
    """What an envelope's signature came to: "intact", "altered" or "unverifiable"."""

    result: str
    detail: str = ""
    payload: bytes = b""


def envelope_check(envelope, *, public_keys: dict[str, Ed25519PublicKey] | None = None) -> Checked:
    """Check a DSSE envelope's signature against the known keys."""
    keys = known_public_keys() if public_keys is None else public_keys
    try:
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        [signature] = envelope["signatures"]
        keyid, sig = signature["keyid"], base64.b64decode(signature["sig"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return Checked("altered", "not a DSSE envelope with one signature")
    key = keys.get(keyid)
    if key is None:
        return Checked("unverifiable", f"signed by key {keyid}, which is not known here")
    try:
        key.verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        return Checked("altered", "the signature does not match the payload")
    return Checked("intact", payload=payload)
