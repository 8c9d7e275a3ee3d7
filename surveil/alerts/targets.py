"""Where webhooks may be sent: `alerts.webhook_hosts`, checked on save and before each POST.

A rule's webhook URL is chosen by an operator, and the scheduler POSTs from inside the
site's network; without a limit, a rule could make the server reach internal services
(server-side request forgery). So the host of every URL is resolved (as the POST would
resolve it, which also reads odd IP literals such as `0x7f000001`, `2130706433` or
`127.1`) and every address it gives must be public, unless `alerts.webhook_hosts`
names the destination. A non-empty list allows only what it names. Saving a rule and
every delivery attempt are held to the policy, so a policy tightened later also stops
rules saved before.

Entries are `host`, `*.domain`, an IP network (`10.0.0.0/8`, `[fd00::/8]`), each with an
optional `:port` or `:*` (any port); an entry without a port allows only 80 and 443, the
web ports, so naming a host never opens its database or cache ports by accident.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from surveil.domain import ConfigError, InputError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[IpAddress]]

SETTING = "alerts.webhook_hosts"
#: Ports an entry without `:port` allows.
WEB_PORTS = frozenset({80, 443})
_SCHEME_PORTS = {"http": 80, "https": 443}


def resolve(host: str) -> list[IpAddress]:
    """Every address `host` resolves to, IP literals in any form included (none: unknown)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _plain(address: IpAddress) -> IpAddress:
    """An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def internal_kind(address: IpAddress) -> str | None:
    """Why an address is not a public destination (loopback, private...), or None."""
    a = _plain(address)
    checks = (
        ("unspecified", a.is_unspecified),
        ("loopback", a.is_loopback),
        ("link-local", a.is_link_local),
        ("multicast", a.is_multicast),
        ("private", a.is_private),
        ("reserved", a.is_reserved),
        ("non-public", not a.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


@dataclass(frozen=True, slots=True)
class Entry:
    """One allowlist entry: a host name, a `.suffix`, or a network; with its ports."""

    name: str | None = None
    suffix: str | None = None
    network: IpNetwork | None = None
    ports: frozenset[int] | None = WEB_PORTS  # None: any port

    def matches(self, host: str, addresses: Sequence[IpAddress], port: int) -> bool:
        """Whether this entry allows `host` (resolved to `addresses`) on `port`."""
        if self.ports is not None and port not in self.ports:
            return False
        if self.name is not None:
            return host == self.name
        if self.suffix is not None:
            return host.endswith(self.suffix)
        assert self.network is not None
        net = self.network
        return bool(addresses) and all(_plain(a) in net or a in net for a in addresses)


def parse_entry(text: str) -> Entry:
    """`host[:port]`, `*.domain[:port]`, `network[:port]`, `[v6 network][:port]`; `:*` any."""
    entry = text.strip().lower()
    port_text: str | None = None
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{SETTING} entry {text!r}: write [v6-address]:port")
        port_text = rest[1:] if rest else None
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:
        host = entry  # a name, or an IPv6 address/network without a port
    ports = _ports(port_text, text)
    host = host.rstrip(".")
    if host.startswith("*.") and len(host) > 2:
        return Entry(suffix=host[1:], ports=ports)
    try:
        return Entry(network=ipaddress.ip_network(host, strict=False), ports=ports)
    except ValueError:
        pass
    if not host or "*" in host or "/" in host:
        raise ConfigError(f"{SETTING} entry {text!r} is not a host, *.domain or network")
    return Entry(name=host, ports=ports)


def _ports(port_text: str | None, text: str) -> frozenset[int] | None:
    if port_text is None:
        return WEB_PORTS
    if port_text == "*":
        return None
    if port_text.isdigit() and 1 <= int(port_text) <= 65_535:
        return frozenset({int(port_text)})
    raise ConfigError(f"{SETTING} entry {text!r}: the port must be 1-65535 or *")


class WebhookPolicy:
    """Allowed destinations: public addresses by default; else what the allowlist names."""

    def __init__(self, allowed: Sequence[str], *, resolver: Resolver = resolve) -> None:
        self._entries = [parse_entry(e) for e in allowed if e.strip()]
        self._resolve = resolver

    @property
    def open(self) -> bool:
        """Whether any public destination is allowed (no allowlist given)."""
        return not self._entries

    def refusal(self, url: str) -> str | None:  # noqa: PLR0911 - one return per reason
        """Why `url` may not be used (naming only its host, never path or query), or None."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "webhook URL is not a valid URL"
        scheme = parts.scheme.lower()
        if scheme not in _SCHEME_PORTS:
            return "webhook URL must start with http:// or https://"
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return "webhook URL has no host"
        port = port or _SCHEME_PORTS[scheme]
        addresses = self._addresses(host)
        if any(e.matches(host, addresses, port) for e in self._entries):
            return None
        if self._entries:
            return f"webhook host {host!r} port {port} is not allowed by {SETTING}"
        if not addresses:
            return f"webhook host {host!r} does not resolve"
        for address in addresses:
            kind = internal_kind(address)
            if kind is not None:
                return (
                    f"webhook host {host!r} is {_plain(address)}, a {kind} address, refused "
                    f"unless {SETTING} allows it (e.g. '{host}:{port}')"
                )
        return None

    def _addresses(self, host: str) -> list[IpAddress]:
        try:
            return [ipaddress.ip_address(host)]  # a plain literal; odd forms go to the resolver
        except ValueError:
            return self._resolve(host)

    def check(self, urls: Sequence[str]) -> None:
        """Raise InputError for the first URL the policy refuses."""
        for url in urls:
            why = self.refusal(url)
            if why is not None:
                raise InputError(f"{why}; ask an administrator to allow it there")


def redact_url(url: str) -> str:
    """`scheme://host` only: paths, queries and userinfo often carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "(invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" if host else "(invalid URL)"
