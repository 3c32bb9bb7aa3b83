"""Client IPs are redacted before anything is stored: IPv4 to its /24, IPv6 to its /48."""

from __future__ import annotations

import pytest

from modelmeter.metering.redact import redact_ip


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.1", "127.0.0.0"),
        ("203.0.113.77", "203.0.113.0"),
        ("10.1.2.255", "10.1.2.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("2001:db8::1", "2001:db8::"),
        ("::1", "::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:192.168.1.42", "192.168.1.0"),  # IPv4-mapped: treated as the IPv4 address
    ],
)
def test_redact(ip: str, expected: str) -> None:
    assert redact_ip(ip) == expected


@pytest.mark.parametrize("ip", [None, "", "not-an-ip", "256.1.1.1", "unix:/tmp/sock", "1.2.3"])
def test_unparsable_is_dropped(ip: str | None) -> None:
    assert redact_ip(ip) is None
