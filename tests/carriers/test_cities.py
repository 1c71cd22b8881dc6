"""The carrier's cities in the database, and the customer's typed city matched to one."""

import pytest

from carriers.models import CarrierCity
from carriers.services import carrier_cities_sync, carrier_city_match, city_correction_set
from tests.factories import CarrierAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    account = CarrierAccountFactory()
    carrier_cities_sync(account)
    return account


def test_syncing_brings_the_carriers_cities_into_the_database(account):
    assert CarrierCity.objects.filter(carrier="sandbox", active=True).count() == 8
    assert CarrierCity.objects.get(carrier="sandbox", name="Fès").carrier_city_id == "4"


def test_syncing_again_changes_nothing_and_a_city_no_longer_listed_is_retired(account):
    gone = CarrierCity.objects.create(
        carrier="sandbox", carrier_city_id="99", name="Atlantis", name_key="atlantis"
    )

    counts = carrier_cities_sync(account)

    assert counts == {"added": 0, "updated": 0, "retired": 1}
    gone.refresh_from_db()
    assert gone.active is False


def test_a_city_typed_as_the_carrier_names_it_matches_exactly(account):
    match = carrier_city_match(account, "Casablanca")

    assert (match.city.name, match.how) == ("Casablanca", "exact")


@pytest.mark.parametrize("typed", ["FES", "fes", "Fés", " fès "])
def test_case_and_accents_do_not_matter(account, typed):
    assert carrier_city_match(account, typed).city.name == "Fès"


def test_an_arabic_spelling_added_to_the_city_matches_with_its_letter_variants(account):
    CarrierCity.objects.filter(carrier="sandbox", name="Tanger").update(aliases=["طنجة"])

    match = carrier_city_match(account, "طنجه")

    assert (match.city.name, match.how) == ("Tanger", "key")


def test_a_small_typo_matches_the_closest_city(account):
    match = carrier_city_match(account, "Marakech")

    assert (match.city.name, match.how) == ("Marrakech", "fuzzy")


def test_a_city_the_carrier_does_not_serve_is_not_guessed(account):
    match = carrier_city_match(account, "Chefchaouen")

    assert (match.city, match.how) == (None, "none")


def test_an_agents_correction_wins_for_that_spelling_from_then_on(account):
    rabat = CarrierCity.objects.get(carrier="sandbox", name="Rabat")

    city_correction_set(account.store, "Témara", rabat)

    match = carrier_city_match(account, "temara")
    assert (match.city, match.how) == (rabat, "correction")
