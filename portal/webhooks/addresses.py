"""Where a webhook may not go: the portal's own machine (loopback), link-local addresses (the
clouds' instance metadata at 169.254.169.254 answers there with credentials), and addresses
that are no host at all (unspecified, multicast, reserved). An admin could otherwise make the
portal POST to them and read the start of the answer on Admin → Webhooks. Private networks
(10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed: an in-house system is a fair receiver.
Checked when an endpoint is added (an address in the URL) and before every attempt (what the
host name resolves to then, and the attempt connects to the address checked).
WEBHOOK_ALLOW_LOOPBACK lets the tests' receivers on 127.0.0.1 in."""
import ipaddress
import socket

from flask import current_app


def refused(address: str) -> str | None:
    """Why events may not go to this IP address, or None."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        if current_app.config["WEBHOOK_ALLOW_LOOPBACK"]:
            return None
        return f"{ip} is this machine's own loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (where clouds answer with instance credentials)"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{ip} is not the address of a host"
    return None


def literal_problem(host: str) -> str | None:
    """For a URL's host: why an IP address written in it is refused; None for a name."""
    try:
        why = refused(host.strip("[]"))
    except ValueError:
        return None
    return f"Events cannot be sent there: {why}." if why else None


def resolve(host: str, port: int) -> list[str]:
    """The IP addresses `host` resolves to now, in the resolver's order, each once. Resolved
    once per attempt: what is checked is what is connected to (portal.outbound.PinnedAddress),
    so a DNS answer that changes in between (rebinding) cannot slip past the check.
    Raises OSError (socket.gaierror) or UnicodeError when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(sockaddr[0] for *_, sockaddr in infos))


def resolved_problem(host: str, resolved: list[str]) -> str | None:
    """Right before an attempt: why one of the addresses the host resolved to is refused."""
    for address in resolved:
        if why := refused(address):
            return (f"{host} resolves to {address}; events are not sent there: {why}. "
                    "Enter an address of the receiving system.")
    return None
