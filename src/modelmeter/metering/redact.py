"""Redaction applied before anything is written: client IPs."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=8192)
def redact_ip(ip: str | None) -> str | None:
    """IPv4: last octet zeroed; IPv6: keep the /48. Anything unparsable is dropped.

    Cached: the same clients call again and again, and parsing costs more than the rest of a record."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.ip_network(f"{addr}/24", strict=False).network_address)
    return str(ipaddress.ip_network(f"{addr}/48", strict=False).network_address)
