"""COD remittance in admin: upload a carrier's statement (preview, then apply), the statements and
their lines (read-only), and the reconciliation page. Thin: reads through carriers.selectors,
writes through carriers.services.remittance."""

import base64
import binascii

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from carriers.models import CarrierAccount, RemittanceLine, RemittanceStatement, RemittanceStatus
from carriers.selectors import (
    carrier_account_remittance_totals,
    remittance_overdue_days,
    shipment_list_remittance_mismatched,
    shipment_list_remittance_overdue,
    shipment_remittance,
)
from carriers.services.remittance import (
    StatementUnreadable,
    file_sha256,
    remittance_statement_import,
    remittance_statement_preview,
)
from carriers.services.remittance_files import FIELDS
from orders.admin import ReadOnlyAdminMixin, admin_datetime
from orders.admin_scoping import StoreScopedAdmin, scope_to_stores
from orders.stored_words import stored_words

IMPORT_PERMISSION = "carriers.import_remittance"
VIEW_PERMISSION = "carriers.view_remittance"
# The file travels back with the "Apply" form (base64 in a hidden field, under Django's 2.5 MB
# limit for a form's fields): statements are a few hundred kB at most.
MAX_STATEMENT_BYTES = 1_500_000
PREVIEW_LINES = 100
LIST_LIMIT = 500
FIELD_LABELS = {
    "tracking_number": _("tracking number"),
    "collected_amount": _("collected amount"),
    "fee": _("fee"),
    "payout_date": _("payout date"),
}


def money(value) -> str:
    if value is None:
        return "-"
    return formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)


def remittance_status_label(status: str) -> str:
    return RemittanceStatus(status).label if status else "-"


def shipment_link(shipment) -> str:
    url = reverse("admin:carriers_shipment_change", args=[shipment.pk])
    return format_html('<a href="{}" dir="ltr">{}</a>', url, shipment.tracking_number or shipment.pk)


def lines_url(**filters) -> str:
    return f"{reverse('admin:carriers_remittanceline_changelist')}?{urlencode(filters)}"


def scoped_accounts(request):
    return scope_to_stores(CarrierAccount.objects.all(), request.user, ("store",))


def shipment_remittance_summary(shipment) -> str:
    """The shipment page's line: expected, remitted, fees, status, and its statement lines."""
    row = shipment_remittance(shipment)
    if not row.remittance_status and not row.has_remittance:
        return "-"
    return format_html(
        '{}: {} · {}: {} · {}: {} · <strong>{}</strong> · <a href="{}">{}</a>',
        gettext("expected"),
        money(row.expected),
        gettext("remitted"),
        money(row.remitted),
        gettext("fees"),
        money(row.remitted_fee),
        remittance_status_label(row.remittance_status),
        lines_url(shipment__id__exact=shipment.pk),
        gettext("statement lines"),
    )


# --- forms ---------------------------------------------------------------------------------
class StatementUploadForm(forms.Form):
    account = forms.ModelChoiceField(label=_("carrier account"), queryset=CarrierAccount.objects.none())
    statement = forms.FileField(
        label=_("statement"), help_text=_("The carrier's remittance statement, as CSV or XLSX")
    )

    def __init__(self, *args, accounts=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = accounts

    def clean_statement(self):
        upload = self.cleaned_data["statement"]
        if upload.size > MAX_STATEMENT_BYTES:
            raise forms.ValidationError(
                gettext("The file is too large (at most %(size)s MB): split the statement.")
                % {"size": formats.number_format(MAX_STATEMENT_BYTES / 1_000_000, decimal_pos=1)}
            )
        return upload


class StatementApplyForm(forms.Form):
    """The previewed file, sent back with "Apply"."""

    account = forms.ModelChoiceField(queryset=CarrierAccount.objects.none(), widget=forms.HiddenInput)
    file_name = forms.CharField(max_length=255, widget=forms.HiddenInput)
    data = forms.CharField(widget=forms.HiddenInput)
    sha256 = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, accounts=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = accounts

    def clean(self):
        cleaned = super().clean()
        try:
            data = base64.b64decode(cleaned.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise forms.ValidationError(
                gettext("The statement was not sent back whole: upload it again.")
            ) from None
        if file_sha256(data) != cleaned.get("sha256"):
            raise forms.ValidationError(gettext("The statement was not sent back whole: upload it again."))
        cleaned["bytes"] = data
        return cleaned


# --- statements ------------------------------------------------------------------------------
@admin.register(RemittanceStatement)
class RemittanceStatementAdmin(StoreScopedAdmin, admin.ModelAdmin):
    """Imported statements, read-only; "add" is the upload (preview, then apply)."""

    store_lookups = ("account__store",)
    list_display = [
        "file_name",
        "account",
        "uploaded",
        "uploaded_by",
        "line_count",
        "matched_count",
        "unknown_count",
        "duplicate_count",
        "collected",
        "fees",
    ]
    list_filter = ["account"]
    list_select_related = ["account", "uploaded_by"]
    search_fields = ["file_name", "lines__tracking_number"]
    fields = [
        "account",
        "file_name",
        "sha256",
        "uploaded_by",
        "uploaded",
        "applied",
        "columns_read",
        "line_count",
        "matched_count",
        "unknown_count",
        "duplicate_count",
        "invalid_count",
        "collected",
        "fees",
        "lines_link",
    ]
    readonly_fields = fields
    change_list_template = "admin/carriers/remittancestatement/change_list.html"

    def get_search_results(self, request, queryset, search_term):
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False

    @admin.display(description=_("uploaded at"), ordering="uploaded_at")
    def uploaded(self, statement):
        return admin_datetime(statement.uploaded_at)

    @admin.display(description=_("applied at"))
    def applied(self, statement):
        return admin_datetime(statement.applied_at)

    @admin.display(description=_("collected"), ordering="collected_total")
    def collected(self, statement):
        return money(statement.collected_total)

    @admin.display(description=_("fees"), ordering="fee_total")
    def fees(self, statement):
        return money(statement.fee_total)

    @admin.display(description=_("columns read"))
    def columns_read(self, statement):
        mapping = statement.column_mapping
        return format_html_join(
            "",
            '<div>{}: <code dir="auto">{}</code></div>',
            ((FIELD_LABELS[f], mapping[f]) for f in FIELDS if f in mapping),
        )

    @admin.display(description=_("lines"))
    def lines_link(self, statement):
        return format_html(
            '<a href="{}">{}</a>', lines_url(statement__id__exact=statement.pk), gettext("Show the lines")
        )

    # --- permissions: imported through the upload only, never edited --------------------------
    def has_add_permission(self, request):
        return request.user.has_perm(IMPORT_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "reconciliation/",
                self.admin_site.admin_view(self.reconciliation_view),
                name="carriers_remittancestatement_reconciliation",
            ),
            *super().get_urls(),
        ]

    # --- upload: preview, then apply -------------------------------------------------------
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        accounts = scoped_accounts(request).order_by("store__name", "name")
        if request.method == "POST" and "_apply" in request.POST:
            return self._apply(request, accounts)
        form = StatementUploadForm(request.POST or None, request.FILES or None, accounts=accounts)
        preview = apply_form = None
        if request.method == "POST" and form.is_valid():
            account, upload = form.cleaned_data["account"], form.cleaned_data["statement"]
            data = upload.read()
            try:
                preview = remittance_statement_preview(account, upload.name, data)
            except StatementUnreadable as error:
                form.add_error("statement", error.shown())
            else:
                apply_form = StatementApplyForm(
                    initial={
                        "account": account.pk,
                        "file_name": upload.name,
                        "data": base64.b64encode(data).decode(),
                        "sha256": preview.sha256,
                    },
                    accounts=accounts,
                )
        return self._upload_page(request, form, preview, apply_form)

    def _apply(self, request, accounts):
        apply_form = StatementApplyForm(request.POST, accounts=accounts)
        if not apply_form.is_valid():
            messages.error(
                request, " ".join(apply_form.non_field_errors()) or gettext("Upload the statement again.")
            )
            return HttpResponseRedirect(reverse("admin:carriers_remittancestatement_add"))
        cleaned = apply_form.cleaned_data
        try:
            statement, created = remittance_statement_import(
                cleaned["account"], cleaned["file_name"], cleaned["bytes"], actor=request.user
            )
        except StatementUnreadable as error:
            messages.error(request, error.shown())
            return HttpResponseRedirect(reverse("admin:carriers_remittancestatement_add"))
        if created:
            messages.success(
                request,
                gettext(
                    "Statement imported: %(matched)d lines matched, %(unknown)d unknown, "
                    "%(duplicate)d duplicates."
                )
                % {
                    "matched": statement.matched_count,
                    "unknown": statement.unknown_count,
                    "duplicate": statement.duplicate_count,
                },
            )
        else:
            messages.info(request, gettext("This statement was already imported: nothing changed."))
        return HttpResponseRedirect(reverse("admin:carriers_remittancestatement_change", args=[statement.pk]))

    def _upload_page(self, request, form, preview, apply_form):
        lines = preview.lines[:PREVIEW_LINES] if preview else []
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import a remittance statement"),
            "opts": self.opts,
            "form": form,
            "preview": preview,
            "apply_form": apply_form,
            "rows": [
                {
                    "row_number": line.row_number,
                    "tracking_number": line.tracking_number,
                    "collected_amount": money(line.collected_amount),
                    "fee": money(line.fee),
                    "payout_date": formats.date_format(line.payout_date) if line.payout_date else "-",
                    "result": RemittanceLine.Result(line.result).label,
                    "result_code": line.result,
                    "note": stored_words(line.note),
                    "shipment": shipment_link(line.shipment) if line.shipment else "-",
                    "expected": money(line.expected),
                }
                for line in lines
            ],
            "more_lines": len(preview.lines) - len(lines) if preview else 0,
            "counts": [(label, preview.counts[value]) for value, label in RemittanceLine.Result.choices]
            if preview
            else [],
            "totals": {
                "collected": money(preview.collected_total),
                "fees": money(preview.fee_total),
                "expected": money(preview.expected_total),
            }
            if preview
            else {},
            "columns": [
                (FIELD_LABELS[field], preview.columns[field]) for field in FIELDS if field in preview.columns
            ]
            if preview
            else [],
        }
        return TemplateResponse(request, "admin/carriers/remittancestatement/upload.html", context)

    # --- reconciliation -----------------------------------------------------------------------
    def reconciliation_view(self, request):
        """Per carrier account: collected, in transit, remitted, pending, lost; then the delivered
        COD parcels no statement paid after N days, and those paid short or over."""
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        try:
            days = max(0, int(request.GET.get("days", "")))
        except ValueError:
            days = remittance_overdue_days()
        accounts = scoped_accounts(request)
        overdue = list(shipment_list_remittance_overdue(accounts, days)[: LIST_LIMIT + 1])
        mismatched = list(shipment_list_remittance_mismatched(accounts)[: LIST_LIMIT + 1])
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("COD remittance reconciliation"),
            "opts": self.opts,
            "days": days,
            "totals": [
                {
                    "account": account,
                    "currency": account.store.currency,
                    "collected": money(account.collected),
                    "in_transit": money(account.in_transit),
                    "remitted": money(account.remitted),
                    "pending": money(account.pending),
                    "lost": money(account.lost),
                }
                for account in carrier_account_remittance_totals(accounts)
            ],
            "overdue": [self._shipment_row(shipment) for shipment in overdue[:LIST_LIMIT]],
            "overdue_more": len(overdue) > LIST_LIMIT,
            "mismatched": [self._shipment_row(shipment) for shipment in mismatched[:LIST_LIMIT]],
            "mismatched_more": len(mismatched) > LIST_LIMIT,
            "limit": LIST_LIMIT,
        }
        return TemplateResponse(request, "admin/carriers/remittancestatement/reconciliation.html", context)

    @staticmethod
    def _shipment_row(shipment) -> dict:
        return {
            "shipment": shipment_link(shipment),
            "order": shipment.order.number,
            "order_url": reverse("admin:orders_order_change", args=[shipment.order_id]),
            "account": shipment.account,
            "delivered_at": admin_datetime(shipment.cod_collected_at or shipment.last_event_at),
            "expected": money(shipment.expected),
            "remitted": money(shipment.remitted),
            "difference": money(shipment.difference),
            "status": remittance_status_label(shipment.remittance_status),
            "currency": shipment.order.currency,
        }


# --- lines -----------------------------------------------------------------------------------
@admin.register(RemittanceLine)
class RemittanceLineAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every statement line as imported: append-only."""

    store_lookups = ("account__store",)
    list_display = [
        "tracking_number_shown",
        "statement",
        "row_number",
        "shipment",
        "collected_amount",
        "fee",
        "payout_date",
        "result",
        "note_shown",
    ]
    list_filter = ["result", "account", "payout_date"]
    list_select_related = ["statement", "shipment"]
    search_fields = ["tracking_number"]
    fields = [
        "statement",
        "account",
        "row_number",
        "tracking_number_shown",
        "shipment",
        "collected_amount",
        "fee",
        "payout_date",
        "result",
        "note_shown",
        "raw_shown",
    ]
    readonly_fields = fields

    @admin.display(description=_("tracking number"), ordering="tracking_number")
    def tracking_number_shown(self, line):
        return format_html('<span dir="ltr">{}</span>', line.tracking_number) if line.tracking_number else "-"

    @admin.display(description=_("note"))
    def note_shown(self, line):
        return stored_words(line.note) or "-"

    @admin.display(description=_("raw row"))
    def raw_shown(self, line):
        rows = ((key, "" if value is None else value) for key, value in line.raw.items())
        return format_html(
            '<table dir="auto">{}</table>',
            format_html_join(
                "", '<tr><th><code dir="auto">{}</code></th><td><code dir="auto">{}</code></td></tr>', rows
            ),
        )
