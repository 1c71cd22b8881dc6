"""Consent: who may be told what, on which channel, with the evidence."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Consent, ConsentEvent, MessagingSettings, Purpose


def consent_record(
    customer,
    channel: str,
    status: str,
    *,
    source: str,
    marketing: bool | None = None,
    actor=None,
    evidence: dict | None = None,
) -> Consent:
    """Set the customer's consent on ``channel`` and append the evidence. Takes effect at once."""
    now = timezone.now()

    def values_after(previous: Consent | None) -> dict:
        keeps_marketing = marketing
        if keeps_marketing is None:
            # An opt-out ends marketing too; an opt-in keeps what marketing consent there was.
            keeps_marketing = status != Consent.Status.OPTED_OUT and bool(previous and previous.marketing)
        return {
            "status": status,
            "marketing": keeps_marketing,
            "source": source,
            "recorded_at": now,
            "recorded_by": actor,
            "evidence": evidence or {},
        }

    with transaction.atomic():
        locked = Consent.objects.select_for_update().filter(customer=customer, channel=channel)
        consent, created = locked.first(), False
        if consent is None:
            try:
                with transaction.atomic():
                    values = values_after(None)
                    consent = Consent.objects.create(customer=customer, channel=channel, **values)
                created = True
            except IntegrityError:
                # A first record raced this one (a STOP reply and the provider's opt-out error
                # together): the constraint made us wait; now update the row the other one made.
                consent = locked.get()
        if not created:
            values = values_after(consent)
            for name, value in values.items():
                setattr(consent, name, value)
            consent.save()
        ConsentEvent.objects.create(customer=customer, channel=channel, **values)
    return consent


def consent_record_provider_opt_out(message, error_code: str) -> Consent:
    """The provider said this customer stopped messages on the message's channel (21610, 131050,
    an unsubscribe or spam report): record it with the message as evidence."""
    return consent_record(
        message.customer,
        message.channel,
        Consent.Status.OPTED_OUT,
        source=Consent.Source.PROVIDER,
        evidence={"provider": message.provider, "error_code": error_code, "message_id": message.pk},
    )


def consent_record_store_claim(customer, channel: str, subscribed: bool, *, evidence: dict) -> Consent | None:
    """Record what a store's checkout said about marketing on ``channel`` (None: nothing new).

    Subscribed: an explicit opt-in, marketing included. Not subscribed: no marketing, and the
    customer's standing for order updates untouched (a "no" to promotions is not a STOP).
    """
    current = customer.consents.filter(channel=channel).first()
    if subscribed:
        if current and current.status == Consent.Status.OPTED_IN and current.marketing:
            return None
        if current and current.status == Consent.Status.OPTED_OUT:
            return None  # a STOP holds until the customer says START; a checkbox does not undo it
        status = Consent.Status.OPTED_IN
    else:
        if current is None or not current.marketing:
            return None
        status = current.status
    return consent_record(
        customer,
        channel,
        status,
        source=Consent.Source.STORE_WEBHOOK,
        marketing=subscribed,
        evidence=evidence,
    )


def consent_allows(customer, channel: str, purpose: str, *, policy: str, consents=None) -> bool:
    """May ``customer`` get a ``purpose`` message on ``channel``? Opt-outs always win.

    ``consents``: the customer's Consent rows when the caller already has them (one query for
    every channel instead of one per channel).
    """
    rows = customer.consents.all() if consents is None else consents
    consent = next((c for c in rows if c.channel == channel), None)
    if consent is not None and consent.status == Consent.Status.OPTED_OUT:
        return False
    if purpose == Purpose.MARKETING:
        return bool(consent and consent.status == Consent.Status.OPTED_IN and consent.marketing)
    if policy == MessagingSettings.TransactionalPolicy.EXPLICIT:
        return bool(consent and consent.status == Consent.Status.OPTED_IN)
    return True
