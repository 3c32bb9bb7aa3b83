"""Keys: generation, hashing and constant-time checks. Only hashes are ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time


def new_key(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    # Keys are 256-bit random strings: a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def session_token(admin_hash: str, ttl_s: int = 7 * 86400, now: float | None = None) -> str:
    """A stateless session cookie: expiry and an HMAC keyed by the admin key's hash, so every
    worker and replica can check it, and changing the admin key ends every session."""
    expiry = int((now if now is not None else time.time()) + ttl_s)
    mac = hmac.new(admin_hash.encode(), f"session:{expiry}".encode(), hashlib.sha256).hexdigest()
    return f"v1.{expiry}.{mac}"


def session_valid(admin_hash: str, token: str, now: float | None = None) -> bool:
    try:
        version, expiry_s, mac = token.split(".")
        expiry = int(expiry_s)
    except ValueError:
        return False
    if version != "v1" or expiry < (now if now is not None else time.time()):
        return False
    want = hmac.new(admin_hash.encode(), f"session:{expiry}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, mac)
