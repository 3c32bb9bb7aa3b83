"""Time windows: named (1h, 24h, 7d, 30d) or explicit start/end, and chart bucket sizes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NAMED = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
# Bucket sizes that give charts 48-200 points whatever the window.
_BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)


class WindowError(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    start_us: int  # inclusive
    end_us: int  # exclusive
    tz: ZoneInfo

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6

    def bucket_seconds(self) -> int:
        for size in _BUCKETS:
            if self.seconds / size <= 200:
                return size
        return _BUCKETS[-1]

    def bucket_origin_us(self, size: int) -> int:
        """Where buckets start: aligned to the viewer's local clock (midnight for day buckets)."""
        start = datetime.fromtimestamp(self.start_us / 1e6, self.tz)
        delta = start.utcoffset()
        offset = int(delta.total_seconds()) if delta is not None else 0
        local = self.start_us // 1_000_000 + offset
        return ((local // size) * size - offset) * 1_000_000


def parse_window(window: str | None = None, start: str | None = None, end: str | None = None,
                 tz: str | None = None, now: float | None = None) -> Window:
    try:
        zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"unknown time zone {tz!r}; use an IANA name like Europe/Paris") from None
    now_us = int((now if now is not None else time.time()) * 1e6)
    if start or end:
        start_us = _parse_time(start, "start", zone) if start else now_us - NAMED["7d"] * 1_000_000
        end_us = _parse_time(end, "end", zone) if end else now_us + 1
        if end_us <= start_us:
            raise WindowError("'end' must be after 'start'")
        return Window(start_us, end_us, zone)
    name = window or "7d"
    if name not in NAMED:
        raise WindowError(f"unknown window {name!r}; use one of {', '.join(NAMED)} or start/end")
    # The end is just past now, so a request recorded this microsecond is in the window.
    return Window(now_us - NAMED[name] * 1_000_000, now_us + 1, zone)


def _parse_time(value: str, name: str, zone: ZoneInfo) -> int:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{name!r} is not an ISO-8601 time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)  # a local time means the viewer's time zone
    return int(dt.astimezone(UTC).timestamp() * 1_000_000)
