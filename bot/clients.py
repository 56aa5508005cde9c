"""Who is calling: the client's address, believing X-Forwarded-For only from our proxies.

Any client can send X-Forwarded-For, so it counts only when the TCP peer is one of the
TRUSTED_PROXIES (the reverse proxies in front of the gateway). Then the address is the
right-most hop that is not itself a trusted proxy: hops further left were written by
the client and prove nothing. Rate limits and login throttling key on this address.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection

from tandem.config import Settings

UNKNOWN = "unknown"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(connection: HTTPConnection, settings: Settings | None = None) -> str:
    """The calling client's IP address (HTTP requests and WebSockets alike)."""
    settings = settings or connection.app.state.settings
    peer = connection.client.host if connection.client else UNKNOWN
    networks = settings.trusted_proxy_networks
    peer_ip = _address(peer)
    if not networks or peer_ip is None or not any(peer_ip in n for n in networks):
        return peer
    header = ",".join(connection.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_ip = _address(hop)
        if hop_ip is None:
            break  # a malformed hop: nothing to its left can be believed either
        if not any(hop_ip in n for n in networks):
            return str(hop_ip)
        peer = str(hop_ip)
    return peer
