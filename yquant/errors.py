"""The project's exception hierarchy; the class says how an error is handled.

YQuantError
 ├── ConfigurationError        fatal at start: fix the settings
 ├── MessageDecodeError        a stream entry that cannot be decoded; dead-letter it
 ├── MessageRefused            a valid message its stream may not carry; dead-letter it, never retry
 ├── OrderInvalid              an order the broker boundary will not send as it stands: never sent
 └── BrokerError               anything from the broker boundary (KIS)
      ├── BrokerUnreachable      no connection could be made: the request never left, nothing happened
      ├── BrokerTransportError   timeout, reset, 5xx without a KIS body: outcome unknown
      │    └── BrokerTimeout       the request may or may not have reached the broker
      ├── BrokerRateLimited      EGW00201 / EGW00215: back off and retry (queries only)
      ├── TokenError             token expired / invalid / issuance throttled
      │    ├── TokenExpired        EGW00123: re-issue once, then retry
      │    ├── TokenInvalid        EGW00121
      │    └── TokenThrottled      EGW00133: wait, never hammer
      ├── BrokerRejected         a business refusal (rt_cd != 0): never retry, show the user
      └── BrokerProtocolError    a body we cannot understand
"""

from __future__ import annotations


class YQuantError(Exception):
    """Base of every error raised by yQuant code."""


class ConfigurationError(YQuantError):
    """The settings are missing or contradictory."""


class MessageDecodeError(YQuantError):
    """A stream entry is not a valid message."""


class MessageRefused(YQuantError):
    """A handler will not act on this message, ever (its stream may not carry it): the consumer
    moves it to the dead-letter stream with the reason and acknowledges it, without a retry."""


class OrderInvalid(YQuantError):
    """An order that cannot be put into a broker request (a limit order without a positive price):
    refused before anything is sent, so it is final with nothing to reconcile. Its own class, not
    ``ValueError``: a ``ValueError`` from a bug after the request was sent must not be taken for a
    refusal, or an order KIS booked would be recorded as never sent."""


class BrokerError(YQuantError):
    """An error at the broker boundary."""

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


class BrokerUnreachable(BrokerError):
    """The broker could not be reached (connection refused, no free connection): nothing was sent."""


class BrokerTransportError(BrokerError):
    """No usable answer from the broker; the request's effect is unknown."""


class BrokerTimeout(BrokerTransportError):
    """The broker did not answer in time; the request may have been executed."""


class BrokerRateLimited(BrokerError):
    """The broker's request rate limit was exceeded."""


class TokenError(BrokerError):
    """The access token could not be used or issued."""


class TokenExpired(TokenError):
    """The broker says the token has expired."""


class TokenInvalid(TokenError):
    """The broker does not know the token."""


class TokenThrottled(TokenError):
    """Token issuance is throttled by the broker."""


class BrokerRejected(BrokerError):
    """The broker refused the request for a business reason."""


class BrokerProtocolError(BrokerError):
    """The broker's answer could not be understood."""
