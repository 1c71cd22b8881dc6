"""COD remittance in admin: upload → preview → apply, the reconciliation page, the shipment's
remittance, each behind its permission and kept to the user's stores."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carriers.models import RemittanceLine, RemittanceStatement
from tests.carriers.remittance_helpers import delivered_shipment, statement, xlsx_bytes
from tests.factories import UserFactory, grant

pytestmark = pytest.mark.django_db

UPLOAD = "admin:carriers_remittancestatement_add"
RECONCILIATION = "admin:carriers_remittancestatement_reconciliation"


@pytest.fixture
def shipment():
    return delivered_shipment(days_ago=20)


def member(client, store, *perms):
    user = grant(UserFactory(stores=[store]), *perms)
    client.force_login(user)
    return user


@pytest.fixture
def importer(client, shipment):
    return member(
        client,
        shipment.account.store,
        "carriers.import_remittance",
        "carriers.view_remittancestatement",
    )


def upload(client, account, data, name="versement.csv"):
    return client.post(
        reverse(UPLOAD), {"account": account.pk, "statement": SimpleUploadedFile(name, data), "_preview": "1"}
    )


def apply(client, preview_page):
    form = preview_page.context["apply_form"]
    return client.post(reverse(UPLOAD), {**{name: form[name].value() for name in form.fields}, "_apply": "1"})


def test_an_uploaded_statement_is_previewed_then_applied(client, importer, shipment):
    data = statement([shipment.tracking_number, "249,00", "25,00", "15/11/2026"], ["NOT-OURS", "10", "1", ""])

    page = upload(client, shipment.account, data)

    assert page.status_code == 200
    assert not RemittanceStatement.objects.exists()  # a preview records nothing
    text = page.content.decode()
    assert shipment.tracking_number in text and "NOT-OURS" in text
    assert [row["result_code"] for row in page.context["rows"]] == ["matched", "unknown"]

    applied = apply(client, page)

    imported = RemittanceStatement.objects.get()
    assert applied.status_code == 302
    assert applied.url == reverse("admin:carriers_remittancestatement_change", args=[imported.pk])
    assert (imported.uploaded_by, imported.matched_count, imported.unknown_count) == (importer, 1, 1)
    assert RemittanceLine.objects.get(result="matched").shipment == shipment


def test_an_xlsx_statement_is_uploaded_too(client, importer, shipment):
    data = xlsx_bytes([["Tracking", "Montant"], [shipment.tracking_number, 249]])

    apply(client, upload(client, shipment.account, data, name="statement.xlsx"))

    assert RemittanceLine.objects.get().shipment == shipment


def test_applying_the_same_statement_twice_changes_nothing(client, importer, shipment):
    data = statement([shipment.tracking_number, "249,00", "25,00", "15/11/2026"])
    apply(client, upload(client, shipment.account, data))

    again = upload(client, shipment.account, data)
    apply(client, again)

    assert again.context["preview"].existing == RemittanceStatement.objects.get()
    assert RemittanceLine.objects.count() == 1


def test_an_unreadable_file_is_refused_on_the_form(client, importer, shipment):
    page = upload(client, shipment.account, b"just some words\nno columns here\n")

    assert page.context["preview"] is None
    assert "statement" in page.context["form"].errors


def test_a_statement_sent_back_altered_is_not_applied(client, importer, shipment):
    page = upload(client, shipment.account, statement([shipment.tracking_number, "249", "0", "15/11/2026"]))
    form = page.context["apply_form"]
    forged = {name: form[name].value() for name in form.fields}
    forged["sha256"] = "0" * 64

    client.post(reverse(UPLOAD), {**forged, "_apply": "1"})

    assert not RemittanceStatement.objects.exists()


def test_uploading_without_the_import_permission_is_refused(client, shipment):
    member(
        client,
        shipment.account.store,
        "carriers.view_remittancestatement",
        "carriers.add_remittancestatement",
    )
    data = statement([shipment.tracking_number, "249", "0", "15/11/2026"])

    assert client.get(reverse(UPLOAD)).status_code == 403
    assert upload(client, shipment.account, data).status_code == 403
    assert not RemittanceStatement.objects.exists()


def test_the_upload_offers_only_the_member_stores_accounts_and_refuses_another(client, importer, shipment):
    theirs = delivered_shipment()

    form = client.get(reverse(UPLOAD)).context["form"]
    page = upload(client, theirs.account, statement([theirs.tracking_number, "249", "0", "15/11/2026"]))

    assert list(form.fields["account"].queryset) == [shipment.account]
    assert "account" in page.context["form"].errors
    assert page.context["preview"] is None


def test_applying_to_another_stores_account_is_refused(client, importer, shipment):
    theirs = delivered_shipment()
    page = upload(client, shipment.account, statement([theirs.tracking_number, "249", "0", "15/11/2026"]))
    form = page.context["apply_form"]
    forged = {name: form[name].value() for name in form.fields}
    forged["account"] = theirs.account.pk

    client.post(reverse(UPLOAD), {**forged, "_apply": "1"})

    assert not RemittanceStatement.objects.exists()


# --- the reconciliation page ----------------------------------------------------------------------
def test_the_reconciliation_page_lists_the_overdue_parcels_and_the_accounts_totals(client, shipment):
    member(client, shipment.account.store, "carriers.view_remittance")
    recent = delivered_shipment(days_ago=3, account=shipment.account)

    page = client.get(reverse(RECONCILIATION))

    assert page.status_code == 200
    assert [row["order"] for row in page.context["overdue"]] == [shipment.order.number]
    [totals] = page.context["totals"]
    assert (totals["account"], totals["collected"], totals["pending"]) == (
        shipment.account,
        "498.00",
        "498.00",
    )
    assert page.context["days"] == 14
    assert recent.order.number not in [row["order"] for row in page.context["overdue"]]


def test_the_days_in_the_query_string_override_the_setting(client, shipment):
    member(client, shipment.account.store, "carriers.view_remittance")
    recent = delivered_shipment(days_ago=3, account=shipment.account)

    page = client.get(reverse(RECONCILIATION), {"days": "2"})

    assert [row["order"] for row in page.context["overdue"]] == [shipment.order.number, recent.order.number]


def test_the_reconciliation_page_shows_only_the_member_stores_accounts(client, shipment):
    theirs = delivered_shipment(days_ago=20)
    member(client, shipment.account.store, "carriers.view_remittance")

    page = client.get(reverse(RECONCILIATION))

    assert [row["account"] for row in page.context["totals"]] == [shipment.account]
    assert [row["order"] for row in page.context["overdue"]] == [shipment.order.number]
    assert theirs.account.name not in page.content.decode()


def test_the_reconciliation_page_needs_its_permission(client, shipment):
    member(client, shipment.account.store, "carriers.view_remittancestatement", "carriers.view_shipment")

    assert client.get(reverse(RECONCILIATION)).status_code == 403


def test_the_reconciliation_page_lists_parcels_remitted_short(client, importer, shipment):
    grant(importer, "carriers.view_remittance")
    apply(
        client,
        upload(client, shipment.account, statement([shipment.tracking_number, "200", "0", "15/11/2026"])),
    )

    page = client.get(reverse(RECONCILIATION))

    [row] = page.context["mismatched"]
    assert (row["order"], row["expected"], row["remitted"], row["difference"]) == (
        shipment.order.number,
        "249.00",
        "200.00",
        "-49.00",
    )


def test_the_shipment_page_shows_its_remittance(client, importer, shipment):
    grant(importer, "carriers.view_shipment")
    apply(
        client,
        upload(client, shipment.account, statement([shipment.tracking_number, "200", "25", "15/11/2026"])),
    )

    page = client.get(reverse("admin:carriers_shipment_change", args=[shipment.pk])).content.decode()

    assert "expected: 249.00" in page and "remitted: 200.00" in page and "Short" in page


def test_an_accounts_remittance_columns_must_name_known_fields(client, shipment):
    member(client, shipment.account.store, "carriers.change_carrieraccount", "carriers.view_carrieraccount")
    account = shipment.account
    data = {
        "store": account.store.pk,
        "carrier": account.carrier,
        "name": account.name,
        "env_prefix": account.env_prefix,
        "webhook_secret_env": "",
        "pickup_address": "{}",
        "default_options": "{}",
        "enabled": "on",
    }
    url = reverse("admin:carriers_carrieraccount_change", args=[account.pk])

    refused = client.post(url, {**data, "remittance_columns": '{"amount": "Montant"}'})
    saved = client.post(url, {**data, "remittance_columns": '{"collected_amount": "Encaissé"}'})

    assert "remittance_columns" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    account.refresh_from_db()
    assert account.remittance_columns == {"collected_amount": "Encaissé"}


def test_the_reconciliation_page_makes_as_many_queries_for_many_parcels_as_for_one(
    client, shipment, django_assert_max_num_queries
):
    member(client, shipment.account.store, "carriers.view_remittance")
    client.get(reverse(RECONCILIATION))  # the session and permissions, cached
    with CaptureQueriesContext(connection) as one:
        client.get(reverse(RECONCILIATION))
    for _ in range(4):
        delivered_shipment(days_ago=20, account=shipment.account)

    with django_assert_max_num_queries(len(one)):
        page = client.get(reverse(RECONCILIATION))

    assert len(page.context["overdue"]) == 5
