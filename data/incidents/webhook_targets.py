"""Where webhooks may go: the allow-list (CITYBRAIN_WEBHOOK_ALLOW), the address checks, and the one POST that honours them.

A department's webhook URL is typed by an administrator, so it could aim the server at itself or at
its own network: 127.0.0.1 (the app's ports, PostgreSQL, Redis), 169.254.169.254 (a cloud's
metadata service), any private machine. By default webhooks go to public addresses only. On a closed
government network the departments' systems have private addresses: the administrator lists their
hosts or networks (CITYBRAIN_WEBHOOK_ALLOW=10.20.0.0/16), and only those are added.

The URL is checked when it is set, for a clear message (a host name that does not resolve yet is
let through there), and again at every delivery, which is the guard: the host is resolved, every
address it has must be allowed, and the connection goes to one of those checked addresses (no
second lookup that DNS could answer differently). Redirects are never followed: a 3xx answer is a
failed delivery, since following it would drop the body or post somewhere never checked.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from data.errors import ValidationError

SETTING = "CITYBRAIN_WEBHOOK_ALLOW"
ANSWER_BYTES = 64 * 1024  # of a receiver's answer read (and dropped) before closing

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedTarget(OSError):
    """A webhook's host resolves to an address the allow-list does not cover (the attempt fails with this message)."""


@dataclass(frozen=True)
class WebhookTargets:
    """What webhooks may reach besides public addresses: host names (exact, or '*.domain' for every sub-domain,
    trusted whatever they resolve to) and networks (an address is a network of one)."""

    names: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # ".gov.example" for "*.gov.example"
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, setting: str) -> WebhookTargets:
        """CITYBRAIN_WEBHOOK_ALLOW: comma-separated hosts, '*.domain' wildcards, addresses and CIDR networks."""
        names, domains, networks = set(), [], []
        for entry in (part.strip().lower() for part in (setting or "").split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            if not name or "/" in name or any(not _is_label(label) for label in name.split(".")):
                raise ValidationError(f"{SETTING}: {entry!r} is not a host name, *.domain, address or network")
            if entry.startswith("*."):
                domains.append("." + name)
            else:
                names.add(name)
        return cls(frozenset(names), tuple(domains), tuple(networks))

    def trusts_name(self, host: str) -> bool:
        """Whether `host` is listed by name (or under a listed *.domain)."""
        host = host.lower().rstrip(".")
        return host in self.names or host.endswith(self.domains)

    def why_refused(self, address: Address) -> str | None:
        """None when webhooks may go to `address`; otherwise what kind of address it is, for the message."""
        address = _plain(address)
        if any(address in network for network in self.networks):
            return None
        if address.is_global and not address.is_multicast:
            return None
        return _kind(address)


PUBLIC_ONLY = WebhookTargets()


def _is_label(label: str) -> bool:
    """One dot-separated part of a host name: ASCII letters, digits and inner hyphens, 1 to 63 of them."""
    return (
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
    )


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: Address) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_private:
        return "a private address"
    return "not a public address"


def _refusal(host: str, address: Address, reason: str) -> str:
    shown = host if host == str(address) else f"{host} ({address})"
    return (
        f"{shown} is {reason}: webhooks go to public addresses only, unless {SETTING} lists the host or its network "
        f"(e.g. {SETTING}=10.20.0.0/16 for the departments' network)"
    )


def _host(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; ValueError when it has neither scheme nor host, or a bad port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL must be http:// or https:// with a host; got {url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, targets: WebhookTargets = PUBLIC_ONLY) -> None:
    """ValidationError, saying why and how to allow it, when `url`'s host is (or resolves to) a refused address.

    A host name that does not resolve now is let through: every delivery resolves and checks it again.
    """
    try:
        host, port = _host(url)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if targets.trusts_name(host):
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
        except (OSError, ValueError):
            return
    for address in addresses:
        reason = targets.why_refused(address)
        if reason is not None:
            raise ValidationError(f"webhook URL {url!r}: {_refusal(host, address, reason)}")


def _checked_addresses(host: str, port: int, targets: WebhookTargets) -> list[tuple]:
    """getaddrinfo's answers for the host, every one of them allowed; RefusedTarget (or socket.gaierror) otherwise."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not targets.trusts_name(host):
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            reason = targets.why_refused(address)
            if reason is not None:
                raise RefusedTarget(_refusal(host, address, reason))
    return infos


def _connect(infos: list[tuple], timeout: float) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers (as socket.create_connection tries them)."""
    error: OSError | None = None
    for family, kind, proto, _name, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("no address to connect to")


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to addresses already resolved and checked; the Host header still names the host."""

    def __init__(self, host: str, port: int, infos: list[tuple], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.infos = infos

    def connect(self) -> None:
        self.sock = _connect(self.infos, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to addresses already resolved and checked; the certificate is verified against the host's name."""

    def __init__(self, host: str, port: int, infos: list[tuple], timeout: float):
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.infos = infos

    def connect(self) -> None:
        self.sock = self.tls.wrap_socket(_connect(self.infos, self.timeout), server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, targets: WebhookTargets = PUBLIC_ONLY) -> int:
    """POST `body` to an allowed address of `url`'s host and return the status code, a 3xx included (never followed).

    Raises RefusedTarget when the host resolves to an address `targets` does not allow, another OSError when
    nothing answers, ValueError for a URL that is not http(s).
    """
    host, port = _host(url)
    infos = _checked_addresses(host, port, targets)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = (_PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP)(host, port, infos, timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(ANSWER_BYTES)
        return response.status
    except http.client.HTTPException as exc:  # an answer that is not HTTP: as good as none
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()


def poster(targets: WebhookTargets) -> Callable[[str, bytes, dict[str, str], float], int]:
    """A Poster (data.incidents.webhooks) that sends only where `targets` allows."""
    return partial(post, targets=targets)
