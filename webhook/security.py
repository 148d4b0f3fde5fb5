"""Who is calling: secrets, source addresses behind proxies, and the client certificate.

* Secrets are compared in constant time as SHA-256 digests (equal lengths, no early exit),
  and only digests are kept after start.
* ``X-Forwarded-For`` is believed only when the connection comes from a configured proxy;
  the client is the right-most hop that is not itself a trusted proxy.
* The client-certificate subject is a header the TLS terminator sets; it is believed only
  from a trusted proxy, and every configured attribute must match.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import SecretStr

from yquant.errors import ConfigurationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_FORWARDED_HOPS = 16


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


class SecretBook:
    """The global secret and the per-strategy secrets, as digests."""

    def __init__(self, global_secret: SecretStr | None, strategy_secrets: Mapping[str, SecretStr]) -> None:
        self._global = _digest(global_secret.get_secret_value()) if global_secret else None
        self._by_strategy = {
            name.lower(): _digest(secret.get_secret_value())
            for name, secret in strategy_secrets.items()
            if secret.get_secret_value()
        }
        self._nothing = _digest("")

    @property
    def empty(self) -> bool:
        return self._global is None and not self._by_strategy

    def verify(self, strategy: str | None, presented: object) -> bool:
        """True when ``presented`` is the strategy's own secret, or the global one if it has none."""
        expected = self._by_strategy.get(strategy, self._global) if strategy else self._global
        candidate = _digest(presented) if isinstance(presented, str) and presented else None
        matched = hmac.compare_digest(expected or self._nothing, candidate or self._nothing)
        return matched and expected is not None and candidate is not None


def parse_networks(values: Iterable[str], setting: str) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR blocks from the settings; a typo stops the service at start."""
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"{setting}: {value!r} is not an IP address or network") from exc
    return tuple(networks)


def parse_address(value: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:80``), IPv4-mapped unwrapped."""
    text = value.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: IPAddress | None, networks: Sequence[IPNetwork]) -> bool:
    if address is None:
        return False
    return any(address.version == network.version and address in network for network in networks)


def client_address(peer: str, forwarded_for: Sequence[str], trusted_proxies: Sequence[IPNetwork]) -> str:
    """The sender's address: the peer, or behind trusted proxies the right-most untrusted hop."""
    peer_address = parse_address(peer)
    if not in_networks(peer_address, trusted_proxies):
        return str(peer_address) if peer_address else peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
        address = parse_address(hop)
        if not in_networks(address, trusted_proxies):
            return str(address) if address else "unknown"
    return str(peer_address)


def rate_limit_key(source: str) -> str:
    """The bucket a source draws on: its address, or its /64 for IPv6 (one host's usual share)."""
    address = parse_address(source)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return source


_ONELINE_SPLIT = re.compile(r"/(?=[A-Za-z][A-Za-z0-9.]*=)")
_ENVOY_SUBJECT = re.compile(r'Subject="((?:[^"\\]|\\.)*)"')


def parse_distinguished_name(text: str) -> dict[str, list[str]]:
    """Attribute -> values of a certificate subject as TLS terminators forward it.

    Reads RFC 4514 / 2253 (nginx ``$ssl_client_s_dn``: ``CN=x,O=TradingView\\, Inc.``), the
    OpenSSL one-line form (``/C=US/O=TradingView, Inc./CN=x``, HAProxy, nginx legacy) and
    Envoy's ``X-Forwarded-Client-Cert`` (``...;Subject="CN=x,O=..."``).
    """
    envoy = _ENVOY_SUBJECT.search(text)
    if envoy:
        text = envoy.group(1).replace('\\"', '"')
    text = text.strip()
    pairs = _split_oneline(text) if text.startswith("/") else _split_rfc4514(text)
    attributes: dict[str, list[str]] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if separator:
            attributes.setdefault(name.strip().upper(), []).append(value.strip())
    return attributes


def _split_oneline(text: str) -> list[str]:
    return [part for part in _ONELINE_SPLIT.split(text[1:]) if part]


def _split_rfc4514(text: str) -> list[str]:
    """Split on unescaped ``,`` / ``+`` / ``;`` and undo backslash and quote escapes in values."""
    pairs: list[str] = []
    current = bytearray()
    index = 0
    quoted = False
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            pair = text[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                current.append(int(pair, 16))
                index += 3
                continue
            current.extend(text[index + 1].encode())
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in ",+;" and not quoted:
            pairs.append(current.decode("utf-8", "replace"))
            current.clear()
        else:
            current.extend(char.encode())
        index += 1
    pairs.append(current.decode("utf-8", "replace"))
    return [pair for pair in pairs if pair.strip()]


class ClientCertificateCheck:
    """The TLS terminator verified TradingView's client certificate and forwarded its subject."""

    def __init__(
        self,
        *,
        subject_header: str,
        required_subject: Mapping[str, str],
        verify_header: str | None,
        verify_value: str,
    ) -> None:
        if not required_subject:
            raise ConfigurationError("webhook.client_cert_subject: name at least one attribute, e.g. CN")
        self.subject_header = subject_header.lower()
        self.required_subject = {name.upper(): value for name, value in required_subject.items()}
        self.verify_header = verify_header.lower() if verify_header else None
        self.verify_value = verify_value.lower()

    def passes(self, headers: Mapping[str, Sequence[str]]) -> bool:
        """``headers``: lower-case name -> every value sent (a repeated header is refused)."""
        if self.verify_header is not None:
            verified = headers.get(self.verify_header, ())
            if len(verified) != 1 or verified[0].strip().lower() != self.verify_value:
                return False
        subjects = headers.get(self.subject_header, ())
        if len(subjects) != 1:
            return False
        attributes = parse_distinguished_name(subjects[0])
        return all(value in attributes.get(name, ()) for name, value in self.required_subject.items())
