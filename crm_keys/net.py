"""Client address of a request, honouring only the configured number of trusted proxies, and
the bucket the failure limiter counts it in."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

# What proxies put in X-Forwarded-For besides a bare address: "1.2.3.4:5678", "[2001:db8::1]:443",
# "[2001:db8::1]".
_V4_WITH_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_V6_IN_BRACKETS = re.compile(r"\[([0-9A-Fa-f:.%\w-]+)\](?::\d{1,5})?")

# The limiter's bucket for a client whose address cannot be read: all of them share it, so an
# unparseable address never turns the limit off.
UNPARSED_BUCKET = "unparsed"


def normalize_ip(text: str | None) -> str | None:
    """One canonical text per address, or None when ``text`` is not one: a port or brackets are
    dropped, an IPv6 zone id (``fe80::1%eth0``) too, and an IPv4-mapped IPv6 address
    (``::ffff:192.0.2.1``) becomes the IPv4 address it is."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)  # the usual case, on every API request
    except ValueError:
        text = text.strip()
        match = _V4_WITH_PORT.fullmatch(text) or _V6_IN_BRACKETS.fullmatch(text)
        if match:
            text = match.group(1)
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.scope_id:
            return str(ipaddress.IPv6Address(int(address)))
    return str(address)


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or with TRUSTED_PROXY_COUNT = n the n-th address from the right of
    X-Forwarded-For (the one our own outermost proxy saw), normalised; None when it is not an
    address. Addresses a client adds on the left are ignored, so a rotating X-Forwarded-For
    cannot change the result."""
    remote = request.META.get("REMOTE_ADDR") or None
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops > 0:
        chain = [
            p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
        ]
        if len(chain) >= hops:
            remote = chain[-hops]
    if remote is not None and len(remote) <= 64:  # every address; not arbitrary header text
        return _normalized(remote)
    return normalize_ip(remote)


@lru_cache(maxsize=4096)
def _normalized(text: str) -> str | None:
    """``normalize_ip``, cached: a client sends many requests from one address, and parsing it
    costs about as much as the key check's HMAC."""
    return normalize_ip(text)


def limiter_bucket(ip: str | None) -> str:
    """Where the failure limiter counts a client: an IPv4 address, an IPv6 /64 (one subscriber
    gets a whole /64 and can rotate through it), or the shared bucket for unreadable ones.
    ``ip`` is normalised (``client_ip``)."""
    if ip is None:
        return UNPARSED_BUCKET
    if ":" not in ip:
        return ip
    return _ipv6_64(ip)


@lru_cache(maxsize=4096)
def _ipv6_64(ip: str) -> str:
    prefix = int(ipaddress.IPv6Address(ip)) & ~((1 << 64) - 1)
    return f"{ipaddress.IPv6Address(prefix)}/64"
