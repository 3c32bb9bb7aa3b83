"""Time windows: named (1h, 24h, 7d, 30d) or explicit start/end, and chart bucket sizes."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NAMED = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
# Times the API accepts: nothing is recorded outside them, and their microseconds fit every integer
# column and every time zone's conversion (year 1 or 9999 overflowed, a 500).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# At most this many chart buckets per answer (a 0001-9999 timeseries was 646 MB): ~27 years of days.
MAX_BUCKETS = 10_000
# Bucket sizes that give charts 48-200 points whatever the window.
_BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)


class WindowError(ValueError):
    def __init__(self, message: str, param: str = "window") -> None:
        super().__init__(message)
        self.param = param  # the query parameter at fault


@dataclass(frozen=True)
class Window:
    start_us: int  # inclusive
    end_us: int  # exclusive
    tz: ZoneInfo

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6

    def previous(self) -> Window:
        """The window of the same length just before this one (what the cards compare with)."""
        return Window(2 * self.start_us - self.end_us, self.start_us, self.tz)

    def bucket_seconds(self) -> int:
        for size in _BUCKETS:
            if self.seconds / size <= 200:
                return size
        return _BUCKETS[-1]

    def check_buckets(self) -> None:
        """WindowError if a timeseries of this window would have more than MAX_BUCKETS buckets."""
        size = self.bucket_seconds()
        count = math.ceil((self.end_us - self.bucket_origin_us(size)) / (size * 1_000_000))
        if count > MAX_BUCKETS:
            raise WindowError(
                f"the window is too long for a timeseries: {count:,} buckets of {size} s; "
                f"at most {MAX_BUCKETS:,} (about {MAX_BUCKETS // 365} years of days)"
            )

    def bucket_origin_us(self, size: int) -> int:
        """Where buckets start: aligned to the viewer's local clock (midnight for day buckets)."""
        start = datetime.fromtimestamp(self.start_us / 1e6, self.tz)
        delta = start.utcoffset()
        offset = int(delta.total_seconds()) if delta is not None else 0
        local = self.start_us // 1_000_000 + offset
        return ((local // size) * size - offset) * 1_000_000


def parse_window(
    window: str | None = None,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
    now: float | None = None,
) -> Window:
    try:
        zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"unknown time zone {tz!r}; use an IANA name like Europe/Paris", "tz") from None
    now_us = int((now if now is not None else time.time()) * 1e6)
    if start or end:
        start_us = _parse_time(start, "start", zone) if start else now_us - NAMED["7d"] * 1_000_000
        end_us = _parse_time(end, "end", zone) if end else now_us + 1
        if end_us <= start_us:
            raise WindowError("'end' must be after 'start'", "end")
        return Window(start_us, end_us, zone)
    name = window or "7d"
    if name not in NAMED:
        raise WindowError(f"unknown window {name!r}; use one of {', '.join(NAMED)} or start/end")
    # The end is just past now, so a request recorded this microsecond is in the window.
    return Window(now_us - NAMED[name] * 1_000_000, now_us + 1, zone)


def _parse_time(value: str, name: str, zone: ZoneInfo) -> int:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone)  # a local time means the viewer's time zone
        utc = dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise WindowError(
            f"{name!r} is not an ISO-8601 time from {EARLIEST:%Y} to {LATEST:%Y}: {value!r}", name
        ) from None
    if not EARLIEST <= utc <= LATEST:
        raise WindowError(f"{name!r} must be from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}, not {value!r}", name)
    return int(utc.timestamp() * 1_000_000)
