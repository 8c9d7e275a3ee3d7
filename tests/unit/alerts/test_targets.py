"""The webhook destination policy: names, wildcards, networks, and the open default."""

from __future__ import annotations

import ipaddress

import pytest

from surveil.alerts.targets import IpAddress, Resolver, WebhookPolicy
from surveil.domain import InputError


def _resolver(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str) -> list[IpAddress]:
        return [ipaddress.ip_address(a) for a in table.get(host, [])]

    return resolve


def test_an_empty_policy_allows_any_http_destination() -> None:
    policy = WebhookPolicy([])
    assert policy.open
    assert policy.refusal("http://10.0.0.1/admin") is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.org/surveil", True),
        ("https://HOOKS.example.org./x", True),
        ("https://a.ops.example.org/x", True),
        ("https://ops.example.org/x", False),  # *.domain means a sub-domain
        ("http://10.20.3.4:8080/h", True),
        ("http://10.21.0.1/h", False),
        ("http://[::1]:9000/h", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("https://evil.example.com/h", False),
    ],
)
def test_names_wildcards_and_networks(url: str, allowed: bool) -> None:
    policy = WebhookPolicy(["hooks.example.org", "*.ops.example.org", "10.20.0.0/16"])
    assert (policy.refusal(url) is None) is allowed


def test_a_name_matches_a_network_only_if_every_address_is_inside() -> None:
    table = {"inside": ["10.20.0.5"], "split": ["10.20.0.6", "192.168.1.1"], "nowhere": []}
    policy = WebhookPolicy(["10.20.0.0/16"], resolver=_resolver(table))
    assert policy.refusal("http://inside/h") is None
    assert policy.refusal("http://split/h") is not None
    assert policy.refusal("http://nowhere/h") is not None


def test_check_names_the_setting_to_change() -> None:
    policy = WebhookPolicy(["hooks.example.org"])
    policy.check(["https://hooks.example.org/a"])
    with pytest.raises(InputError, match=r"alerts\.webhook_hosts"):
        policy.check(["https://hooks.example.org/a", "http://127.0.0.1:5432/"])
