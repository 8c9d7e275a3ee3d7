"""The webhook destination policy: internal addresses refused by default, allowlist with ports."""

from __future__ import annotations

import ipaddress

import pytest

from surveil.alerts.targets import IpAddress, Resolver, WebhookPolicy, parse_entry, redact_url
from surveil.domain import ConfigError, InputError


def _resolver(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str) -> list[IpAddress]:
        return [ipaddress.ip_address(a) for a in table.get(host, [])]

    return resolve


PUBLIC = {"hooks.example.org": ["93.184.216.34"], "a.ops.example.org": ["93.184.216.35"]}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:5432/",
        "http://0x7f000001/h",
        "http://2130706433/h",
        "http://127.1/h",
        "http://0177.0.0.1/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://[::ffff:10.0.0.1]/h",
        "http://10.1.2.3/h",
        "http://192.168.0.10/h",
        "http://172.16.0.1/h",
        "http://100.64.0.1/h",
        "http://0.0.0.0/h",
        "http://[::]/h",
        "http://224.0.0.1/h",
        "http://[ff02::1]/h",
        "http://240.0.0.1/h",
        "http://[fe80::1]/h",
        "http://[fd00::1]/h",
        "http://localhost:8080/h",
    ],
)
def test_the_default_refuses_every_internal_address_in_any_spelling(url: str) -> None:
    why = WebhookPolicy([]).refusal(url)  # the real resolver: odd literals read as a POST would
    assert why is not None and "alerts.webhook_hosts" in why
    assert "/h" not in why and "meta-data" not in why  # names the host, never the path


def test_the_default_allows_public_addresses_and_checks_every_address() -> None:
    table = {**PUBLIC, "split": ["93.184.216.34", "10.0.0.1"], "nowhere": []}
    policy = WebhookPolicy([], resolver=_resolver(table))
    assert policy.open
    assert policy.refusal("https://hooks.example.org/surveil?token=x") is None
    assert policy.refusal("http://hooks.example.org:8080/h") is None
    assert "10.0.0.1, a private address" in (policy.refusal("http://split/h") or "")
    assert "does not resolve" in (policy.refusal("http://nowhere/h") or "")
    assert "http:// or https://" in (policy.refusal("ftp://hooks.example.org/") or "")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.org/surveil", True),
        ("https://HOOKS.example.org./x", True),
        ("http://hooks.example.org/x", True),
        ("http://hooks.example.org:6379/x", False),  # no port named: 80 and 443 only
        ("https://a.ops.example.org/x", False),  # *.ops... names port 8443 only
        ("https://a.ops.example.org:8443/x", True),
        ("https://ops.example.org:8443/x", False),  # *.domain means a sub-domain
        ("http://10.20.3.4:8080/h", True),
        ("http://10.20.3.4/h", False),
        ("http://10.21.0.1:8080/h", False),
        ("http://127.0.0.1:9000/h", True),
        ("http://127.0.0.1:9001/h", False),
        ("http://[::1]:5432/h", False),
        ("http://[fd00::7]:9/h", True),
        ("http://169.254.169.254/latest/meta-data", False),
        ("https://evil.example.com/h", False),  # a list allows only what it names
    ],
)
def test_the_allowlist_names_hosts_wildcards_networks_and_ports(url: str, allowed: bool) -> None:
    entries = [
        "hooks.example.org",
        "*.ops.example.org:8443",
        "10.20.0.0/16:8080",
        "127.0.0.1:9000",
        "[fd00::/8]:*",
    ]
    table = {**PUBLIC, "evil.example.com": ["93.184.216.99"]}
    policy = WebhookPolicy(entries, resolver=_resolver(table))
    assert (policy.refusal(url) is None) is allowed


def test_a_network_entry_matches_a_name_only_if_every_address_is_inside() -> None:
    table = {"inside": ["10.20.0.5"], "split": ["10.20.0.6", "192.168.1.1"], "nowhere": []}
    policy = WebhookPolicy(["10.20.0.0/16"], resolver=_resolver(table))
    assert policy.refusal("http://inside/h") is None
    assert policy.refusal("http://split/h") is not None
    assert policy.refusal("http://nowhere/h") is not None


@pytest.mark.parametrize("entry", ["host:0", "host:99999", "host:http", "*", "[::1]x", "a/b"])
def test_a_malformed_entry_names_the_setting(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.webhook_hosts entry"):
        parse_entry(entry)


def test_check_names_the_setting_to_change() -> None:
    policy = WebhookPolicy(["hooks.example.org"], resolver=_resolver(PUBLIC))
    policy.check(["https://hooks.example.org/a"])
    with pytest.raises(InputError, match=r"alerts\.webhook_hosts; ask an administrator"):
        policy.check(["https://hooks.example.org/a", "http://127.0.0.1:5432/"])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bot:pw@hooks.example.org:8443/a/b?token=x#f", "https://hooks.example.org"),
        ("http://[::1]:5432/x", "http://[::1]"),
        ("http://[bad", "(invalid URL)"),
    ],
)
def test_redaction_keeps_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown
