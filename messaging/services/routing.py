"""Which channels to try for a customer, in which order, and when quiet hours hold a message."""

import datetime

from messaging.models import Channel, ChannelProvider, MessagingSettings
from messaging.services.consent import consent_allows

DEFAULT_PROVIDER = "sandbox"


def messaging_settings_for(store) -> MessagingSettings:
    settings, _ = MessagingSettings.objects.get_or_create(store=store)
    settings.store = store  # quiet hours read its time zone; spare the query
    return settings


def contact_point(customer, channel: str) -> str:
    """Where ``channel`` reaches the customer; empty when it cannot."""
    if channel in (Channel.WHATSAPP, Channel.SMS):
        return customer.phone  # E.164, empty when the number is invalid
    if channel == Channel.EMAIL:
        return customer.email
    return ""


def route_channels(customer, settings: MessagingSettings, purpose: str) -> list[str]:
    """The preferred channel first, then the store's order; only channels with consent and contact.

    The store's order is also the list of channels it uses: a preference for a channel the store
    left out does not bring it back (it has no provider there, and nobody would notice the loss).
    """
    store_channels = list(dict.fromkeys(settings.channel_order))
    preferred = customer.preferred_channel
    order = [preferred] if preferred in store_channels else []
    order += [channel for channel in store_channels if channel not in order]
    consents = list(customer.consents.all())
    return [
        channel
        for channel in order
        if channel in Channel.values
        and contact_point(customer, channel)
        and consent_allows(
            customer, channel, purpose, policy=settings.transactional_policy, consents=consents
        )
    ]


def channel_provider_for(store, channel: str) -> ChannelProvider:
    """The store's enabled provider for ``channel``; the sandbox when none is configured."""
    configured = ChannelProvider.objects.filter(store=store, channel=channel, enabled=True).first()
    return configured or ChannelProvider(store=store, channel=channel, provider=DEFAULT_PROVIDER)


def quiet_hours_end(settings: MessagingSettings, now: datetime.datetime) -> datetime.datetime | None:
    """When the store's quiet hours end if ``now`` falls inside them, else None."""
    start, end = settings.quiet_hours_start, settings.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(settings.store.time_zone)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    opens = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if opens <= local:
        opens += datetime.timedelta(days=1)
    return opens
