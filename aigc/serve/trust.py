"""Who is this visitor? Decided per connection, never per server.

A visitor is *local* (the owner of a local app) only when their websocket comes from loopback and
carries no forwarding header: a reverse proxy or tunnel on the same host (nginx, ngrok,
cloudflared) connects from loopback too, but adds such headers, so whoever it forwards is remote.
Headers can be forged, but only ever to make a visitor look *less* local: a header never grants
anything. The client key for the password limiter is the peer address, or, behind a proxy the
operator declared trusted, the address that proxy saw (its X-Real-IP, else the last
X-Forwarded-For entry, the one the proxy itself appended).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping

# Headers by which proxies and tunnels say "I forward someone else" (RFC 7239 and the de facto ones).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
                      "x-forwarded-server", "x-real-ip", "via", "cf-connecting-ip", "cf-ray", "true-client-ip",
                      "x-client-ip", "x-cluster-client-ip", "fastly-client-ip", "client-ip", "x-original-forwarded-for")
MAX_KEY_CHARS = 64


def is_loopback_ip(text: str | None) -> bool:
    """True for 127.x and ::1 (and ::ffff:127.x); False for anything else, including '' and garbage."""
    try:
        address = ipaddress.ip_address(str(text or "").strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def _lower(headers: Mapping | None) -> dict[str, str]:
    out = {}
    for key, value in (headers or {}).items():
        try:
            out[str(key).strip().lower()] = str(value)
        except Exception:  # noqa: BLE001  (a forged header object: ignore it, the visitor stays remote)
            continue
    return out


@dataclass(frozen=True)
class Visitor:
    """One connection as the server sees it: whether it is the local owner, and the key its guesses count under."""

    local: bool
    client: str
    forwarded: bool


def visitor(peer_ip: str | None, headers: Mapping | None, *, connected: bool = True,
            trusted_proxy: bool = False) -> Visitor:
    """Classify one connection.

    peer_ip: the websocket's remote address (None or '' when unknown); connected: False when there is
    no client connection at all (Streamlit's AppTest, a script run without a browser), which is
    treated as the local owner only because no network is involved.
    """
    lowered = _lower(headers)
    forwarded = any(name in lowered for name in FORWARDING_HEADERS)
    if not connected:
        return Visitor(local=not forwarded, client="local", forwarded=forwarded)
    peer = str(peer_ip or "").strip()[:MAX_KEY_CHARS]
    local = is_loopback_ip(peer) and not forwarded
    client = peer or "unknown"
    if trusted_proxy and forwarded:
        client = _proxied_client(lowered) or client
    return Visitor(local=local, client=client[:MAX_KEY_CHARS], forwarded=forwarded)


def _proxied_client(headers: dict[str, str]) -> str | None:
    """The address the trusted proxy saw: X-Real-IP, else the last X-Forwarded-For entry (the one it appended)."""
    for candidate in (headers.get("x-real-ip", ""), headers.get("x-forwarded-for", "").split(",")[-1]):
        candidate = candidate.strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None
