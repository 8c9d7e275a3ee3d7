"""Where webhooks may be sent: `alerts.webhook_hosts`, checked on save and before each POST.

A rule's webhook URL is chosen by an operator, and the scheduler POSTs from inside the
site's network; without a limit, a rule could make the server reach internal services
(server-side request forgery). Operations names the allowed destinations once, and both
saving a rule and every delivery attempt are held to it, so a policy tightened later
also stops rules saved before.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from surveil.domain import InputError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[IpAddress]]

SETTING = "alerts.webhook_hosts"


def resolve(host: str) -> list[IpAddress]:
    """Every address `host` resolves to (none when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class WebhookPolicy:
    """Allowed destinations: host names, `*.domain` wildcards, and IP networks (CIDR).

    An empty list allows any http(s) URL (the default, for sites whose operators are
    trusted with the network). A host name entry matches the URL's host by name; a
    network entry matches an IP literal in it, or a name whose every address is in it.
    """

    def __init__(self, allowed: Sequence[str], *, resolver: Resolver = resolve) -> None:
        self._names: set[str] = set()
        self._suffixes: list[str] = []
        self._networks: list[IpNetwork] = []
        self._resolve = resolver
        for entry in (e.strip().lower() for e in allowed):
            if not entry:
                continue
            if entry.startswith("*."):
                self._suffixes.append(entry[1:])
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry.rstrip("."))

    @property
    def open(self) -> bool:
        """Whether every destination is allowed."""
        return not (self._names or self._suffixes or self._networks)

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be used, or None when it may."""
        if self.open:
            return None
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host:
            return f"webhook {url!r} has no host"
        if host in self._names or any(host.endswith(s) for s in self._suffixes):
            return None
        if self._networks and self._in_networks(host):
            return None
        return f"webhook host {host!r} is not allowed by {SETTING}"

    def check(self, urls: Sequence[str]) -> None:
        """Raise InputError for the first URL the policy refuses."""
        for url in urls:
            why = self.refusal(url)
            if why is not None:
                raise InputError(f"{why}; ask an administrator to allow it there")

    def _in_networks(self, host: str) -> bool:
        try:
            addresses: list[IpAddress] = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            addresses = self._resolve(host)
        return bool(addresses) and all(any(a in net for net in self._networks) for a in addresses)
