"""Which callback URLs the API accepts and the deliverer calls."""

import pytest

from medvoice_common.webhook_url import (
    CallbackRefused,
    check_callback,
    host_allowed,
    parse_callback,
    refused_address,
)

HOSTS = ("hooks.example.com", "*.clinic.example")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/medvoice",
        "https://HOOKS.example.com:8443/x?token=abc",
        "https://emr.clinic.example/in",
        "https://a.b.clinic.example/in",
    ],
)
def test_accepted_forms(url: str) -> None:
    parse_callback(url, HOSTS)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must be an https"),
        ("ftp://hooks.example.com/x", "must be an https"),
        ("https://evil.example.com/x", "not in the allowed callback hosts"),
        ("https://clinic.example/x", "not in the allowed callback hosts"),  # *. means below
        ("https://hooks.example.com.evil.test/x", "not in the allowed callback hosts"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https:///x", "no host"),
        ("https://hooks.example.com:99999/x", "not a valid URL"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than"),
    ],
)
def test_refused_forms(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        parse_callback(url, HOSTS)


def test_an_empty_allow_list_refuses_every_callback() -> None:
    with pytest.raises(CallbackRefused, match="not accepted by this deployment"):
        parse_callback("https://hooks.example.com/x", ())


def test_wildcards_cover_subdomains_only() -> None:
    assert host_allowed("x.clinic.example", HOSTS)
    assert host_allowed("x.clinic.example.", HOSTS)
    assert not host_allowed("clinic.example", HOSTS)
    assert not host_allowed("xclinic.example", HOSTS)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "reserved"),  # noqa: S104 - the address under test
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),  # shared address space (carrier-grade NAT)
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert refused_address(address) == kind


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_address(address) is None


async def test_a_host_resolving_to_loopback_is_refused_unless_private_is_allowed() -> None:
    hosts = ("localhost", "127.0.0.1")
    for url in ("https://localhost:8443/x", "https://127.0.0.1/x"):
        with pytest.raises(CallbackRefused, match="resolves to a loopback address"):
            await check_callback(url, hosts, allow_private=False)
        await check_callback(url, hosts, allow_private=True)


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(CallbackRefused, match="does not resolve"):
        await check_callback("https://nowhere.invalid/x", ("nowhere.invalid",), False)
