"""Who is calling: the client address, believing X-Forwarded-For only from our own proxies.

Behind a reverse proxy every request comes from the proxy's address; the proxy appends
the real client to X-Forwarded-For. Anyone can send that header, though, so it is read
only when the direct peer is in TRUSTED_PROXIES, and then from the right: the first hop
that is not a trusted proxy is the client (hops further left were written by the client).
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import HTTPConnection

UNKNOWN = "unknown"


def _trusted(address: str, proxies: list[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_address(connection: HTTPConnection) -> str:
    """The client's IP address for limits and logs (a request or a WebSocket)."""
    peer = connection.client.host if connection.client else UNKNOWN
    proxies = connection.app.state.settings.trusted_proxy_networks
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [
        hop.strip()
        for header in connection.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer  # a garbled header: count the proxy rather than a made-up name
    return peer
