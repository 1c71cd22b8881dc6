"""The team channel: a Slack-compatible incoming webhook (Slack, Mattermost and Google Chat all take
``{"text": "..."}`` on a URL that is itself the secret, ``TEAM_CHANNEL_WEBHOOK_URL``).

One call, ``team_channel_post(text)``; a refusal raises ``TeamChannelError`` saying whether trying
again later may help. Slack answers 200 ``ok``; 429 with ``Retry-After`` when posting faster than
about one message a second; 400/403/404/410 (invalid_payload, invalid_token, no_service,
channel_is_archived …) will not get better by retrying; 5xx and network errors may.
"""

from dataclasses import dataclass

import requests
from django.conf import settings

TIMEOUT_SECONDS = 10
MAX_TEXT = 3500  # well under Slack's 40,000 and Google Chat's 4,096 characters


@dataclass
class TeamChannelError(Exception):
    reason: str
    retryable: bool
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.reason


def team_channel_configured() -> bool:
    return bool(settings.TEAM_CHANNEL_WEBHOOK_URL)


def team_channel_post(text: str) -> None:
    try:
        response = requests.post(
            settings.TEAM_CHANNEL_WEBHOOK_URL, json={"text": text[:MAX_TEXT]}, timeout=TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        reason = f"no answer from the team channel: {type(exc).__name__}"
        raise TeamChannelError(reason, retryable=True) from exc
    if response.status_code < 300:
        return
    reason = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code == 429:
        after = response.headers.get("Retry-After", "")
        raise TeamChannelError(reason, retryable=True, retry_after=int(after) if after.isdigit() else None)
    raise TeamChannelError(reason, retryable=response.status_code >= 500)
