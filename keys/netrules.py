"""Per-key network rules: the optional IP allowlist."""

from __future__ import annotations

import ipaddress


def normalize_networks(text: str) -> str:
    """One CIDR range (or address) per line, IPv4 or IPv6 -> normalized text. Raises ValueError."""
    out = []
    for raw in (text or "").replace(",", "\n").splitlines():
        item = raw.strip()
        if not item:
            continue
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item[:60]!r} is not an IP address or CIDR range.") from None
    return "\n".join(out)


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(line, strict=False) for line in text.splitlines() if line.strip()]


def ip_allowed(ip: str | None, networks: list) -> bool:
    if not networks:
        return True
    if ip is None:
        return False
    addr = ipaddress.ip_address(ip)
    return any(addr in net for net in networks if net.version == addr.version)
