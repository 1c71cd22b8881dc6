"""Which channels to try for a customer, in which order, through which provider, and when quiet
hours hold a message.

A channel goes through the provider the store chose for it (admin: *Channel providers*) and
through nothing else: a channel without an enabled provider is not routed, and the notification
says "no provider configured". The sandbox, which only pretends to send, is used where a store
chose it (the demo store does), never as a silent stand-in.
"""

import datetime

from messaging.models import Channel, ChannelProvider, MessagingSettings
from messaging.services.consent import consent_allows

NO_PROVIDER = "no provider configured"
SANDBOX = "sandbox"


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


def channel_provider_for(store, channel: str) -> ChannelProvider | None:
    """The store's enabled provider for ``channel``; None when it has none."""
    return ChannelProvider.objects.filter(store=store, channel=channel, enabled=True).first()


def channel_providers_for(store, channels) -> dict[str, ChannelProvider]:
    """The store's enabled provider for each of ``channels`` that has one (one per channel)."""
    providers = ChannelProvider.objects.filter(store=store, channel__in=channels, enabled=True)
    return {provider.channel: provider for provider in providers}


def no_provider_note(channels) -> str:
    """What a notification records about the channels it could not use for want of a provider."""
    return f"{NO_PROVIDER} for {', '.join(channels)}" if channels else ""


def channel_providers_choose_sandbox(store) -> list[ChannelProvider]:
    """Choose the sandbox for each channel the store has no provider for (a demo or test store)."""
    taken = set(ChannelProvider.objects.filter(store=store).values_list("channel", flat=True))
    return ChannelProvider.objects.bulk_create(
        ChannelProvider(store=store, channel=channel, provider=SANDBOX)
        for channel in Channel.values
        if channel not in taken
    )


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
