"""Units and formats every layer shares (storage, auth, usage, metering, the bench client):
money in picodollars, instants as ISO-8601 UTC text. Stdlib only, imports nothing of ours."""

from __future__ import annotations

from datetime import UTC, datetime

PICO = 10**12  # stored money: integer picodollars (1e-12 USD), summed without float drift


def iso(us: int) -> str:
    """Microseconds since the epoch → ``2026-12-05T08:30:00.000000Z``."""
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
