"""Which URL a Discord destination is sent to, and that its error texts never show it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from notifier.channels import discord_url, mask, secrets_of
from yquant.settings import NotifyDestination

COPIED = "https://discord.com/api/webhooks/1180000000000000001/abc-token"


@pytest.mark.parametrize(
    ("configured", "requested"),
    [
        (COPIED, "https://discord.com/api/v10/webhooks/1180000000000000001/abc-token"),
        (
            "https://discordapp.com/api/webhooks/1/t?thread_id=9",
            "https://discordapp.com/api/v10/webhooks/1/t?thread_id=9",
        ),
        ("https://discord.com/api/v9/webhooks/1/t", "https://discord.com/api/v9/webhooks/1/t"),  # chosen: kept
        ("https://relay.example/hooks/discord/1/t", "https://relay.example/hooks/discord/1/t"),  # not Discord's shape
    ],
)
def test_a_webhook_url_without_an_api_version_is_pinned_to_the_documented_one(configured: str, requested: str) -> None:
    assert discord_url(configured) == requested


def test_an_error_naming_the_requested_url_is_masked_too() -> None:
    destination = NotifyDestination(kind="discord", url=SecretStr(COPIED))
    error = f"ReadTimeout: {discord_url(COPIED)} did not answer"
    assert mask(error, secrets_of(destination)) == "ReadTimeout: *** did not answer"
