"""Secrets, source addresses behind proxies, and the forwarded client certificate."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from webhook.security import (
    ClientCertificateCheck,
    SecretBook,
    client_address,
    parse_distinguished_name,
    parse_networks,
    rate_limit_key,
)
from yquant.errors import ConfigurationError

PROXY = parse_networks(["10.0.0.5", "10.1.0.0/24"], "trusted_proxies")
TRADINGVIEW = "52.89.214.238"


def book(global_secret: str | None = "global-secret", **per_strategy: str) -> SecretBook:  # noqa: S107
    return SecretBook(
        SecretStr(global_secret) if global_secret is not None else None,
        {name: SecretStr(value) for name, value in per_strategy.items()},
    )


def test_global_secret_opens_any_strategy_without_its_own() -> None:
    secrets = book()
    assert secrets.verify("swing-kr", "global-secret")
    assert secrets.verify(None, "global-secret")
    assert not secrets.verify("swing-kr", "global-secreT")


def test_strategy_with_its_own_secret_refuses_the_global_one() -> None:
    secrets = book(**{"swing-kr": "own-secret"})
    assert secrets.verify("swing-kr", "own-secret")
    assert not secrets.verify("swing-kr", "global-secret")
    assert not secrets.verify("other", "own-secret")
    assert secrets.verify("other", "global-secret")


def test_strategy_names_in_settings_are_compared_in_lower_case() -> None:
    secrets = book(None, **{"Swing-KR": "own-secret"})
    assert secrets.verify("swing-kr", "own-secret")


@pytest.mark.parametrize("presented", [None, "", 12345, ["global-secret"], {"secret": "global-secret"}])
def test_anything_but_the_secret_string_is_refused(presented: object) -> None:
    assert not book().verify("swing-kr", presented)


def test_without_any_secret_nothing_is_accepted() -> None:
    secrets = book(None, **{"empty": ""})
    assert secrets.empty
    assert not secrets.verify("empty", "")
    assert not secrets.verify(None, "anything")


def test_non_utf8_text_does_not_break_the_comparison() -> None:
    assert not book().verify("a", "\udcff lone surrogate")


def test_peer_is_the_source_without_a_trusted_proxy() -> None:
    assert client_address("203.0.113.9", ["52.89.214.238"], PROXY) == "203.0.113.9"
    assert client_address("203.0.113.9", [], ()) == "203.0.113.9"


def test_forwarded_for_is_believed_from_a_trusted_proxy() -> None:
    assert client_address("10.0.0.5", [TRADINGVIEW], PROXY) == TRADINGVIEW


def test_client_cannot_forge_its_address_through_the_proxy() -> None:
    # The client sent "X-Forwarded-For: 52.89.214.238"; nginx appended the real peer.
    assert client_address("10.0.0.5", [f"{TRADINGVIEW}, 198.51.100.7"], PROXY) == "198.51.100.7"


def test_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    forwarded = [f"198.51.100.7, {TRADINGVIEW}, 10.1.0.9"]
    assert client_address("10.0.0.5", forwarded, PROXY) == TRADINGVIEW


def test_repeated_forwarded_for_headers_are_one_list() -> None:
    assert client_address("10.0.0.5", ["198.51.100.7", TRADINGVIEW], PROXY) == TRADINGVIEW


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        (f"{TRADINGVIEW}:443", TRADINGVIEW),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:52.89.214.238", TRADINGVIEW),
        ("unknown", "unknown"),
        ("<script>\x00", "unknown"),
        ("", "10.0.0.5"),
    ],
)
def test_forwarded_addresses_as_proxies_write_them(hop: str, expected: str) -> None:
    assert client_address("10.0.0.5", [hop], PROXY) == expected


def test_ipv6_sources_share_a_bucket_per_64() -> None:
    assert rate_limit_key("2001:db8:1:2::7") == rate_limit_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert rate_limit_key(TRADINGVIEW) == TRADINGVIEW
    assert rate_limit_key("unknown") == "unknown"


def test_ipv4_mapped_peer_is_unwrapped() -> None:
    assert client_address("::ffff:10.0.0.5", [TRADINGVIEW], PROXY) == TRADINGVIEW


def test_networks_with_a_typo_stop_the_start() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        parse_networks(["10.0.0.300"], "trusted_proxies")


@pytest.mark.parametrize(
    "subject",
    [
        "CN=TradingView Webhooks,O=TradingView\\, Inc.,L=Westerville,ST=Ohio,C=US",
        "C=US, ST=Ohio, O=TradingView\\2C Inc., CN=TradingView Webhooks",
        'CN=TradingView Webhooks,O="TradingView, Inc.",C=US',
        "/C=US/ST=Ohio/L=Westerville/O=TradingView, Inc./CN=TradingView Webhooks",
        'By=spiffe://x;Hash=abc;Subject="CN=TradingView Webhooks,O=TradingView\\, Inc.";URI=',
    ],
)
def test_subject_forms_of_tls_terminators(subject: str) -> None:
    attributes = parse_distinguished_name(subject)
    assert "TradingView Webhooks" in attributes["CN"]
    assert "TradingView, Inc." in attributes["O"]


def check(verify_header: str | None = None) -> ClientCertificateCheck:
    return ClientCertificateCheck(
        subject_header="X-SSL-Client-S-DN",
        required_subject={"O": "TradingView, Inc.", "CN": "TradingView Webhooks"},
        verify_header=verify_header,
        verify_value="SUCCESS",
    )


GOOD_SUBJECT = "CN=TradingView Webhooks,O=TradingView\\, Inc.,C=US"


def test_tradingview_subject_passes() -> None:
    assert check().passes({"x-ssl-client-s-dn": [GOOD_SUBJECT]})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ssl-client-s-dn": [""]},
        {"x-ssl-client-s-dn": ["CN=TradingView Webhooks,O=Evil Inc."]},
        {"x-ssl-client-s-dn": ["CN=Someone,O=TradingView\\, Inc."]},
        {"x-ssl-client-s-dn": ["O=TradingView\\, Inc.,CN=TradingView Webhooks x"]},
        {"x-ssl-client-s-dn": ["CN=Evil", GOOD_SUBJECT]},
    ],
)
def test_other_or_ambiguous_subjects_fail(headers: dict[str, list[str]]) -> None:
    assert not check().passes(headers)


def test_verification_header_is_required_when_configured() -> None:
    subject = {"x-ssl-client-s-dn": [GOOD_SUBJECT]}
    assert not check("X-SSL-Client-Verify").passes(subject)
    assert not check("X-SSL-Client-Verify").passes({**subject, "x-ssl-client-verify": ["FAILED:self signed"]})
    assert check("X-SSL-Client-Verify").passes({**subject, "x-ssl-client-verify": ["SUCCESS"]})


def test_empty_required_subject_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        ClientCertificateCheck(subject_header="x", required_subject={}, verify_header=None, verify_value="SUCCESS")
