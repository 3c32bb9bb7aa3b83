"""Dashboard sessions: signed cookies with their own server secret and a sliding 12-hour expiry.

A session token is ``v2.<expiry>.<mac>``, the MAC an HMAC-SHA256 keyed by a random server secret
(kept in ``server_settings``, shared by every worker and replica on the database) over the expiry
and the admin key's hash. The secret is not derived from anything stored for the admin key, so
reading the key's hash is not enough to mint a cookie; putting the admin hash under the MAC means
changing the admin key ends every session, and ``rotate_session_secret`` ends them too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from modelmeter.storage.database import Database

SESSION_TTL_S = 12 * 3600
# A cookie is re-issued (the expiry slides) once it is this old, not on every response.
REFRESH_AFTER_S = 300
CLOCK_SKEW_S = 300  # replicas' clocks may differ this much
_SECRET_SETTING = "session_secret"


def resolve_session_secret(db: Database) -> str:
    """The stored server secret, or a new random one (the first process to store it wins)."""
    row = db.fetchone("SELECT value FROM server_settings WHERE name = :n", {"n": _SECRET_SETTING})
    if row:
        return str(row[0])
    db.execute(
        "INSERT INTO server_settings (name, value) VALUES (:n, :v) ON CONFLICT (name) DO NOTHING",
        {"n": _SECRET_SETTING, "v": secrets.token_hex(32)},
    )
    stored = db.fetchone("SELECT value FROM server_settings WHERE name = :n", {"n": _SECRET_SETTING})
    assert stored is not None
    return str(stored[0])


def rotate_session_secret(db: Database) -> None:
    """A new server secret: every session cookie issued so far stops working (at the next start)."""
    db.execute("DELETE FROM server_settings WHERE name = :n", {"n": _SECRET_SETTING})
    db.execute(
        "INSERT INTO server_settings (name, value) VALUES (:n, :v)", {"n": _SECRET_SETTING, "v": secrets.token_hex(32)}
    )


@dataclass(frozen=True, slots=True)
class Sessions:
    secret: str
    admin_hash: str
    ttl_s: int = SESSION_TTL_S

    def _mac(self, expiry: int) -> str:
        return hmac.new(
            self.secret.encode(), f"session:{expiry}:{self.admin_hash}".encode(), hashlib.sha256
        ).hexdigest()

    def issue(self, now: float | None = None) -> str:
        expiry = int((now if now is not None else time.time()) + self.ttl_s)
        return f"v2.{expiry}.{self._mac(expiry)}"

    def expiry(self, token: str, now: float | None = None) -> int | None:
        """The token's expiry if it is ours and still valid, else None."""
        try:
            version, expiry_s, mac = token.split(".")
            expiry = int(expiry_s)
        except ValueError:
            return None
        t = now if now is not None else time.time()
        # Never (much) later than a token we would issue now: a far-future expiry cannot pass.
        if version != "v2" or not t <= expiry <= t + self.ttl_s + CLOCK_SKEW_S:
            return None
        return expiry if hmac.compare_digest(self._mac(expiry), mac) else None

    def stale(self, expiry: int, now: float | None = None) -> bool:
        """Old enough to re-issue (the sliding expiry)."""
        t = now if now is not None else time.time()
        return expiry - t < self.ttl_s - REFRESH_AFTER_S
