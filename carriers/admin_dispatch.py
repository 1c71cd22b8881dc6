"""Dispatch from admin: "Create parcels at <account>" on the order list, the batch's progress page
and its merged labels. Thin: the batch is made and run by carriers.services.dispatch, the run
published after commit to the worker (carriers.dispatch_batch_run)."""

from functools import partial

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from carriers.models import CarrierAccount, DispatchBatch
from carriers.services import carrier_label, dispatch_batch_create, dispatch_batch_labels
from carriers.services.dispatch import (
    CREATED,
    FAILED,
    SKIP_HAS_PARCEL,
    SKIP_STATUS,
    SKIP_STORE,
    SKIPPED,
    UNKNOWN,
)
from carriers.tasks import dispatch_batch_run_task
from config.celery import task_publish
from orders.admin import ReadOnlyAdminMixin, admin_datetime
from orders.admin_scoping import StoreScopedAdmin, scope_to_stores
from orders.models import Order
from orders.transitions import OrderStatus

DISPATCH_PERMISSION = "carriers.add_dispatchbatch"
# Refresh the progress page this often (seconds) while the batch runs.
REFRESH_SECONDS = 2

OUTCOMES = {
    CREATED: _("parcel created"),
    FAILED: pgettext_lazy("dispatch result", "failed"),
    UNKNOWN: _("no answer from the carrier: looked up again when the batch runs again"),
    SKIPPED: pgettext_lazy("dispatch result", "skipped"),
}
SKIP_REASONS = {
    SKIP_STATUS: _("the order is not confirmed or processing (it is %(status)s)"),
    SKIP_STORE: _("an order of another store than the carrier account's"),
    SKIP_HAS_PARCEL: _("the order already has a parcel at another carrier account"),
}


def dispatch_accounts_for(request):
    """The enabled carrier accounts ``request.user`` may create parcels at (their stores')."""
    if not request.user.has_perm(DISPATCH_PERMISSION):
        return CarrierAccount.objects.none()
    accounts = CarrierAccount.objects.filter(enabled=True).select_related("store").order_by("store", "name")
    return scope_to_stores(accounts, request.user, ("store",))


def dispatch_actions(request) -> dict:
    """The order list's actions: one "Create parcels at …" per account the user may use."""
    actions = {}
    for account in dispatch_accounts_for(request):
        name = f"dispatch_to_account_{account.pk}"
        description = gettext("Create parcels at %(account)s (%(carrier)s)") % {
            "account": account.name,
            "carrier": carrier_label(account.carrier),
        }
        # The admin formats descriptions with the model's names: keep a "%" in a name as it is.
        actions[name] = (
            partial(dispatch_orders, account_id=account.pk),
            name,
            description.replace("%", "%%"),
        )
    return actions


def dispatch_orders(modeladmin, request, queryset, *, account_id: int):
    """The action: a batch for the selected orders, run in the background; on to its page."""
    account = dispatch_accounts_for(request).filter(pk=account_id).first()
    if account is None:  # disabled or taken away since the list was drawn
        modeladmin.message_user(request, gettext("This carrier account is not available to you."), "error")
        return None
    batch = dispatch_batch_create(account, queryset.select_related("store"), request.user)
    transaction.on_commit(partial(task_publish, dispatch_batch_run_task, batch.pk))
    return HttpResponseRedirect(reverse("admin:carriers_dispatchbatch_change", args=[batch.pk]))


_order_admin = admin.site.get_model_admin(Order)
_order_admin.action_providers = [*_order_admin.action_providers, dispatch_actions]


@admin.register(DispatchBatch)
class DispatchBatchAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The batches of parcels created from the order list (never added, changed or deleted here):
    each one's page is its progress."""

    store_lookups = ("account__store",)
    list_display = [
        "__str__",
        "account",
        "status",
        "total",
        "created_count",
        "failed_count",
        "skipped_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "account"]
    list_select_related = ["account", "created_by"]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/labels/",
                self.admin_site.admin_view(self.labels_view),
                name="carriers_dispatchbatch_labels",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self._batch_or_404(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Parcels at %(account)s") % {"account": batch.account.name},
            "opts": self.opts,
            "original": batch,
            "batch": batch,
            "running": batch.status != DispatchBatch.Status.DONE,
            "refresh_seconds": REFRESH_SECONDS,
            "rows": self._result_rows(batch),
            "created_at": admin_datetime(batch.created_at),
            "finished_at": admin_datetime(batch.finished_at) if batch.finished_at else "",
            "labels_url": reverse("admin:carriers_dispatchbatch_labels", args=[quote(batch.pk)]),
        }
        return TemplateResponse(request, "admin/carriers/dispatchbatch/progress.html", context)

    def labels_view(self, request, object_id):
        """The batch's created parcels' labels, one PDF (asked of the carrier again if need be)."""
        batch = self._batch_or_404(request, object_id)
        batch_url = reverse("admin:carriers_dispatchbatch_change", args=[quote(batch.pk)])
        if batch.status != DispatchBatch.Status.DONE:
            message = gettext("The parcels are still being created: the labels come once they all are.")
            self.message_user(request, message, "warning")
            return HttpResponseRedirect(batch_url)
        pdf = dispatch_batch_labels(batch)
        if pdf is None:
            self.message_user(request, gettext("No labels: no parcel of this batch was created."), "error")
            return HttpResponseRedirect(batch_url)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="labels-batch-{batch.pk}.pdf"'
        return response

    def _batch_or_404(self, request, object_id) -> DispatchBatch:
        if not self.has_view_permission(request):
            raise Http404("No such batch.")
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            raise Http404("No such batch.")
        return batch

    def _result_rows(self, batch: DispatchBatch) -> list[dict]:
        orders = {order.pk: order for order in Order.objects.filter(pk__in=batch.orders.values("pk"))}
        rows = []
        for order_id, order in sorted(orders.items()):
            result = batch.results.get(str(order_id), {})
            outcome = result.get("outcome", "")
            reason = SKIP_REASONS.get(result.get("reason", ""), "")
            if reason:
                reason = reason % {"status": OrderStatus(result.get("status", order.status)).label.lower()}
            rows.append(
                {
                    "number": order.number,
                    "order_url": reverse("admin:orders_order_change", args=[quote(order_id)]),
                    "outcome": outcome,
                    "outcome_shown": OUTCOMES.get(outcome, gettext("not sent yet")),
                    "shipment_url": (
                        reverse("admin:carriers_shipment_change", args=[result["shipment"]])
                        if result.get("shipment")
                        else ""
                    ),
                    "tracking_number": result.get("tracking_number", ""),
                    "shipped": result.get("shipped", False),
                    "reason": reason,
                    # The carrier's or Livra's technical words stay English.
                    "error": result.get("error", "") or result.get("note", ""),
                }
            )
        return rows
