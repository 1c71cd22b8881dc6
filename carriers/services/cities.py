"""The carrier's city list in the database, and a customer's typed city matched to it.

Matching, in order: the store's own correction for that spelling (an agent's), the exact name,
the same matching key (case, accents, Arabic letter variants and punctuation ignored) on the
name or one of its other spellings, then the closest key when it is close enough and clearly
closer than the next (rapidfuzz's normalised Indel similarity, as difflib's ratio but in C). No match is
better than a wrong one: an unmatched city waits for an agent.
"""

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rapidfuzz.fuzz import ratio

from carriers.adapters import fold
from carriers.models import CarrierAccount, CarrierCity, CityCorrection
from carriers.services.accounts import carrier_account_adapter

FUZZY_MIN_RATIO = 0.85
FUZZY_MIN_LEAD = 0.05
_ARABIC_VARIANTS = str.maketrans({"ة": "ه", "ى": "ي", "ـ": None, "ٱ": "ا"})
_SEPARATORS = re.compile(r"[\s\-'’`.,/()]+")


def city_key(text: str) -> str:
    """What matching compares: folded (case, accents and Arabic vowel marks gone: "أ" → "ا"),
    Arabic letter variants unified (ة → ه, ى → ي, no tatweel), punctuation and spaces gone."""
    return _SEPARATORS.sub("", fold(text).translate(_ARABIC_VARIANTS))


@dataclass(frozen=True)
class CityMatch:
    city: CarrierCity | None
    how: str  # correction | exact | key | fuzzy | none
    score: float = 1.0


def carrier_cities_sync(account: CarrierAccount) -> dict[str, int]:
    """Fetch the carrier's list (outside any transaction) and bring the table in line with it.

    Cities no longer listed are kept (orders point at them) but marked inactive; other spellings
    added by people are kept.
    """
    listed = carrier_account_adapter(account).cities()
    now = timezone.now()
    counts = {"added": 0, "updated": 0, "retired": 0}
    with transaction.atomic():
        known = {city.carrier_city_id: city for city in CarrierCity.objects.filter(carrier=account.carrier)}
        for item in listed:
            city = known.pop(item.carrier_city_id, None)
            values = {"name": item.name, "zone": item.zone, "name_key": city_key(item.name), "active": True}
            if city is None:
                CarrierCity.objects.create(
                    carrier=account.carrier, carrier_city_id=item.carrier_city_id, synced_at=now, **values
                )
                counts["added"] += 1
            elif any(getattr(city, name) != value for name, value in values.items()):
                CarrierCity.objects.filter(pk=city.pk).update(synced_at=now, **values)
                counts["updated"] += 1
        counts["retired"] = CarrierCity.objects.filter(
            pk__in=[c.pk for c in known.values()], active=True
        ).update(active=False, synced_at=now)
    return counts


def carrier_city_match(account: CarrierAccount, typed: str) -> CityMatch:
    """The carrier's city for what the customer typed, and how it was found (see the module)."""
    key = city_key(typed)
    if not key:
        return CityMatch(None, "none", 0.0)
    correction = (
        CityCorrection.objects.filter(store=account.store_id, carrier=account.carrier, typed_key=key)
        .select_related("city")
        .first()
    )
    if correction is not None:
        return CityMatch(correction.city, "correction")
    cities = list(CarrierCity.objects.filter(carrier=account.carrier, active=True))
    for city in cities:
        if city.name == typed.strip():
            return CityMatch(city, "exact")
    for city in cities:
        if key == city.name_key or key in {city_key(alias) for alias in city.aliases}:
            return CityMatch(city, "key")
    scored = sorted(
        ((max(ratio(key, other) / 100 for other in _keys(city)), city) for city in cities),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if scored and scored[0][0] >= FUZZY_MIN_RATIO:
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        if scored[0][0] - runner_up >= FUZZY_MIN_LEAD:
            return CityMatch(scored[0][1], "fuzzy", round(scored[0][0], 3))
    return CityMatch(None, "none", round(scored[0][0], 3) if scored else 0.0)


def city_correction_set(store, typed: str, city: CarrierCity, *, actor=None) -> CityCorrection:
    """An agent says: in ``store``, ``typed`` is ``city`` at its carrier (now and from now on)."""
    correction, _ = CityCorrection.objects.update_or_create(
        store=store,
        carrier=city.carrier,
        typed_key=city_key(typed),
        defaults={"typed": typed.strip()[:200], "city": city, "created_by": actor},
    )
    return correction


def _keys(city: CarrierCity) -> list[str]:
    return [city.name_key, *(city_key(alias) for alias in city.aliases)]
