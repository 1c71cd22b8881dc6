"""Consent: who may be told what, on which channel, with the evidence."""

from django.db import transaction
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
    with transaction.atomic():
        consent = Consent.objects.select_for_update().filter(customer=customer, channel=channel).first()
        if marketing is None:
            # An opt-out ends marketing too; an opt-in keeps what marketing consent there was.
            marketing = False if status == Consent.Status.OPTED_OUT else bool(consent and consent.marketing)
        values = {
            "status": status,
            "marketing": marketing,
            "source": source,
            "recorded_at": now,
            "recorded_by": actor,
            "evidence": evidence or {},
        }
        if consent is None:
            consent = Consent.objects.create(customer=customer, channel=channel, **values)
        else:
            for name, value in values.items():
                setattr(consent, name, value)
            consent.save()
        ConsentEvent.objects.create(customer=customer, channel=channel, **values)
    return consent


def consent_allows(customer, channel: str, purpose: str, *, policy: str) -> bool:
    """May ``customer`` get a ``purpose`` message on ``channel``? Opt-outs always win."""
    consent = next((c for c in customer.consents.all() if c.channel == channel), None)
    if consent is not None and consent.status == Consent.Status.OPTED_OUT:
        return False
    if purpose == Purpose.MARKETING:
        return bool(consent and consent.status == Consent.Status.OPTED_IN and consent.marketing)
    if policy == MessagingSettings.TransactionalPolicy.EXPLICIT:
        return bool(consent and consent.status == Consent.Status.OPTED_IN)
    return True
