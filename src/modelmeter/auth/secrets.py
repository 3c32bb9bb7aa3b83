"""Keys: generation, hashing and constant-time checks. Only hashes are ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_key(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    # Keys are 256-bit random strings: a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
