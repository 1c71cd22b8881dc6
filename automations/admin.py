"""Automations admin: the store's rules (edited through ``rule_save``, with their history and a dry
run), the timers and sweep runs (read-only), and the confirmation queue agents work from.

Writes go through services only: a rule's save and its enable/disable actions through
``automations.services.rules.rule_save`` (validated, versioned, one ``RuleRevision`` each), the
queue's "mark done" through ``automations.services.queue.queue_entry_close``. Timers, sweep runs
and revisions are written by the engine and the sweep, so nothing here adds, edits or deletes them.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from automations.forms import INTENT_LABELS, DryRunForm, RuleForm
from automations.models import QueueEntry, Rule, RuleRevision, SweepRun, TeamAlert, Timer, Trigger
from automations.services.queue import queue_entry_close
from automations.services.rules import (
    ACTS,
    DRY_RUN_LIMIT,
    OUTCOMES,
    SNAPSHOT_FIELDS,
    dry_run_orders,
    rule_dry_run,
    rule_save,
    rule_set_enabled,
    snapshot_value,
)
from orders.admin import PhoneSearchMixin, ReadOnlyAdminMixin
from orders.admin_scoping import StoreScopedAdmin
from orders.transitions import OrderStatus

DRY_RUN_PERMISSION = "automations.dry_run_rule"
REVISION_VIEW_PERMISSION = "automations.view_rulerevision"
PRE_STYLE = "white-space:pre-wrap;word-break:break-word;max-height:30em;overflow:auto;margin:0"
SCALAR_FIELDS = ("name", "position", "enabled", "trigger", "status", "delay_minutes", "intent")


def duration_text(minutes: int | None) -> str:
    if not minutes:
        return "?"
    if minutes % 60 == 0:
        return gettext("%(hours)s h") % {"hours": minutes // 60}
    return gettext("%(minutes)s min") % {"minutes": minutes}


def status_label(status: str) -> str:
    return OrderStatus(status).label if status in OrderStatus.values else status or "?"


def trigger_summary(rule: Rule) -> str:
    """The rule's trigger in a few words, e.g. "order stays in Awaiting confirmation for 30 min"."""
    if rule.trigger == Trigger.ENTERED_STATUS:
        return gettext("order enters %(status)s") % {"status": status_label(rule.status)}
    if rule.trigger == Trigger.IN_STATUS_FOR:
        return gettext("order stays in %(status)s for %(duration)s") % {
            "status": status_label(rule.status),
            "duration": duration_text(rule.delay_minutes),
        }
    if rule.trigger == Trigger.REPLY_INTENT:
        return gettext("customer replies: %(intent)s") % {"intent": INTENT_LABELS.get(rule.intent, "?")}
    if rule.trigger == Trigger.LATE_REPLY:
        return gettext("customer replies once the order no longer awaits an answer: %(intent)s") % {
            "intent": INTENT_LABELS.get(rule.intent, "?")
        }
    if rule.trigger == Trigger.ALL_CHANNELS_FAILED:
        return gettext("every channel failed for a message")
    if rule.trigger == Trigger.SHIPMENT_STALE:
        return gettext("no carrier news for %(duration)s") % {"duration": duration_text(rule.delay_minutes)}
    return rule.trigger


def order_link(admin_site, order) -> str:
    url = reverse(f"{admin_site.name}:orders_order_change", args=[quote(order.pk)])
    return format_html('<a href="{}">{}</a>', url, order.number)


def preformatted(text: str, css_class: str) -> str:
    return format_html('<pre class="{}" dir="auto" style="{}">{}</pre>', css_class, PRE_STYLE, text)


def revision_changes(before: dict | None, after: dict) -> list[str]:
    """What a revision changed from the one before it, in short lines."""
    if before is None:
        return [gettext("first version")]
    changes = []
    for name in SNAPSHOT_FIELDS:
        old, new = snapshot_value(before, name), snapshot_value(after, name)
        if old == new:
            continue
        if name in SCALAR_FIELDS:
            changes.append(
                gettext("%(field)s: %(old)s → %(new)s")
                % {
                    "field": name,
                    "old": old if old not in (None, "") else "-",
                    "new": new if new not in (None, "") else "-",
                }
            )
        else:
            changes.append(gettext("%(field)s changed") % {"field": name})
    return changes or [gettext("no change")]


# --- rules -----------------------------------------------------------------------------------
@admin.register(Rule)
class RuleAdmin(StoreScopedAdmin, admin.ModelAdmin):
    form = RuleForm
    change_form_template = "admin/automations/rule/change_form.html"
    list_display = ["position", "name_column", "store", "trigger_text", "enabled", "version", "updated_at"]

    @admin.display(description=_("name"), ordering="name")
    def name_column(self, rule: Rule) -> str:
        return rule.name_shown

    list_display_links = ["name_column"]
    list_filter = ["store", "trigger", "enabled"]
    list_select_related = ["store"]
    ordering = ["store__name", "store_id", "position", "id"]
    search_fields = ["name", "key"]
    actions = ["enable_rules", "disable_rules"]
    readonly_fields = ["key", "version", "created_at", "updated_at", "history"]

    def get_fieldsets(self, request, obj=None):
        first = ["store", "name", "key", "position", "enabled"]
        if obj is None or self.has_change_permission(request, obj):
            first.append("loaded_version")  # the version this editor started from (hidden)
        fieldsets = [
            (None, {"fields": first}),
            (
                pgettext_lazy("rule editor section", "When"),
                {
                    "fields": ["trigger", "status", "delay_minutes", "intent"],
                    "description": _(
                        "What starts the rule. Status triggers need the status; "
                        "'stayed in a status' and 'no carrier news' need the delay; replies need the intent."
                    ),
                },
            ),
            (pgettext_lazy("rule editor section", "If"), {"fields": ["conditions"]}),
            (pgettext_lazy("rule editor section", "Then"), {"fields": ["actions"]}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    pgettext_lazy("rule editor section", "Record"),
                    {"fields": ["version", "created_at", "updated_at"]},
                )
            )
            if request.user.has_perm(REVISION_VIEW_PERMISSION):
                fieldsets.append(
                    (
                        pgettext_lazy("rule editor section", "Versions"),
                        {"fields": ["history"], "classes": ["collapse"]},
                    )
                )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("store")  # a rule's timers and history belong to its store
        return readonly

    def has_delete_permission(self, request, obj=None):
        # Deleting would take the rule's history and timers with it: disable it instead.
        return False

    @admin.display(description=_("trigger"), ordering="trigger")
    def trigger_text(self, rule: Rule):
        return trigger_summary(rule)

    @admin.display(description=_("change history"))
    def history(self, rule: Rule):
        revisions = list(rule.revisions.select_related("changed_by").order_by("version"))
        rows, before = [], None
        for revision in revisions:
            rows.append(
                {
                    "revision": revision,
                    "changes": revision_changes(before, revision.snapshot),
                    "snapshot": json.dumps(revision.snapshot, indent=2, ensure_ascii=False),
                }
            )
            before = revision.snapshot
        return render_to_string("admin/automations/rule/history.html", {"rows": rows[::-1]})

    # --- saving --------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        rule_save(obj, actor=request.user, expected_version=form.cleaned_data.get("loaded_version"))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as refused:
            # The form checked the rule already; this is the rare save that lost a race (another
            # edit, a template deleted meanwhile). The admin's transaction is rolled back.
            messages.error(
                request,
                gettext("The rule was not saved: %(problems)s") % {"problems": " ".join(refused.messages)},
            )
            return HttpResponseRedirect(request.get_full_path())

    # --- enable / disable ----------------------------------------------------------------
    @admin.action(description=_("Enable the selected rules"), permissions=["change"])
    def enable_rules(self, request, queryset):
        self.set_enabled_and_report(request, queryset, enabled=True)

    @admin.action(description=_("Disable the selected rules"), permissions=["change"])
    def disable_rules(self, request, queryset):
        self.set_enabled_and_report(request, queryset, enabled=False)

    def set_enabled_and_report(self, request, queryset, *, enabled: bool) -> None:
        done = []
        for rule in queryset.order_by("pk"):
            try:
                if rule_set_enabled(rule, enabled, actor=request.user):
                    done.append(rule)
            except ValidationError as refused:
                messages.error(
                    request,
                    gettext("“%(rule)s” was not enabled: %(problems)s")
                    % {"rule": rule.name_shown, "problems": " ".join(refused.messages)},
                )
        if done:
            names = ", ".join(
                gettext("“%(rule)s” (now v%(version)s)") % {"rule": rule.name_shown, "version": rule.version}
                for rule in done
            )
            text = gettext("Enabled: %(rules)s.") if enabled else gettext("Disabled: %(rules)s.")
            self.message_user(request, text % {"rules": names}, messages.SUCCESS)

    # --- dry run -------------------------------------------------------------------------
    def has_dry_run_permission(self, request) -> bool:
        return request.user.has_perm(DRY_RUN_PERMISSION)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "<path:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="{}_{}_dry_run".format(*info),
            )
        ]
        return custom + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add and self.has_dry_run_permission(request):
            context["dry_run_url"] = reverse(
                f"{self.admin_site.name}:automations_rule_dry_run", args=[quote(obj.pk)]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def dry_run_view(self, request, object_id):
        """What the rule would do, for one order or the store's recent orders. Takes no action:
        GET with no choice shows the form; GET with a choice or POST shows the plan."""
        if not (self.has_view_permission(request) and self.has_dry_run_permission(request)):
            raise PermissionDenied
        rule = self.get_object(request, unquote(object_id))
        if rule is None:
            raise Http404("No such rule.")
        chosen = request.POST if request.method == "POST" else request.GET
        bound = request.method == "POST" or any(chosen.get(name) for name in ("order", "days"))
        form = DryRunForm(chosen if bound else None, rule=rule)
        rows, total = None, 0
        if bound and form.is_valid():
            order, days = form.cleaned_data.get("order"), form.cleaned_data.get("days")
            rows = rule_dry_run(rule, order=order, days=None if order else days)
            total = 1 if order else dry_run_orders(rule, days).count()
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("What would “%(rule)s” do?") % {"rule": rule.name_shown},
            "opts": self.opts,
            "original": rule,
            "rule": rule,
            "trigger": trigger_summary(rule),
            "form": form,
            "rows": [
                {
                    "row": row,
                    "order_link": order_link(self.admin_site, row.order),
                    "outcome": OUTCOMES[row.outcome],
                    "acts": row.outcome == ACTS,
                }
                for row in rows or ()
            ],
            "ran": rows is not None,
            "total": total,
            "limit": DRY_RUN_LIMIT,
            "acting": sum(1 for row in rows or () if row.outcome == ACTS),
            "change_url": reverse(f"{self.admin_site.name}:automations_rule_change", args=[quote(rule.pk)]),
        }
        return TemplateResponse(
            request, "admin/automations/rule/dry_run.html", context, status=400 if form.errors else 200
        )


@admin.register(RuleRevision)
class RuleRevisionAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    store_lookups = ("rule__store",)
    list_display = ["rule", "version", "changed_by", "changed_at"]
    list_filter = ["rule__store"]
    list_select_related = ["rule", "changed_by"]
    search_fields = ["rule__name"]
    fields = readonly_fields = ["rule", "version", "changed_by", "changed_at", "snapshot_block"]

    @admin.display(description=_("the rule at this version"))
    def snapshot_block(self, revision: RuleRevision):
        return preformatted(json.dumps(revision.snapshot, indent=2, ensure_ascii=False), "rule-snapshot")


# --- timers and sweeps -----------------------------------------------------------------------
@admin.register(Timer)
class TimerAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    store_lookups = ("order__store",)
    list_display = ["id", "order_number", "rule", "status", "due_at", "state", "short_outcome"]
    list_filter = ["state", "rule"]
    list_select_related = ["order", "rule"]
    search_fields = ["order__number"]
    show_full_result_count = False  # the sweep's table is large; the filtered count is enough
    fields = readonly_fields = [
        "order_number",
        "rule",
        "status",
        "status_version",
        "due_at",
        "state",
        "fired_at",
        "outcome",
        "created_at",
    ]

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, timer: Timer):
        return order_link(self.admin_site, timer.order)

    @admin.display(description=_("outcome"))
    def short_outcome(self, timer: Timer):
        return Truncator(timer.outcome).chars(80) if timer.outcome else ""


@admin.register(SweepRun)
class SweepRunAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # A run counts every store's timers and lists their errors: superusers only.
    store_lookups = ()
    list_display = ["started_at", "finished_at", "fired", "skipped", "errors"]
    list_filter = [("started_at", admin.DateFieldListFilter)]
    date_hierarchy = "started_at"
    fields = readonly_fields = ["started_at", "finished_at", "fired", "skipped", "errors", "error_block"]

    @admin.display(description=_("errors, timer by timer"))
    def error_block(self, run: SweepRun):
        return preformatted(run.error_text, "sweep-errors") if run.error_text else "—"


@admin.register(TeamAlert)
class TeamAlertAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    store_lookups = ("order__store",)
    """What rules posted (or could not post) to the team channel."""

    list_display = ["created_at", "order_number", "text_column", "state", "attempts", "sent_at"]

    @admin.display(description=_("text"))
    def text_column(self, alert: TeamAlert) -> str:
        # Posted to the team channel in English; marked so (screen readers, and tests/i18n).
        return format_html('<span lang="en">{}</span>', alert.text)

    list_filter = ["state", "rule"]
    list_select_related = ["order"]
    search_fields = ["order__number", "text"]
    fields = readonly_fields = [
        "order_number",
        "rule",
        "text_column",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
        "created_at",
    ]

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, alert: TeamAlert):
        return order_link(self.admin_site, alert.order)


# --- the confirmation queue ------------------------------------------------------------------
class QueueStateFilter(admin.SimpleListFilter):
    """Open entries unless asked otherwise: the queue is what is still to be done."""

    title = _("state")
    parameter_name = "state"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*QueueEntry.State.choices, (self.ALL, pgettext_lazy("queue entry state", "All"))]

    def choices(self, changelist):
        current = self.value() or QueueEntry.State.OPEN
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or QueueEntry.State.OPEN
        return queryset if value == self.ALL else queryset.filter(state=value)


@admin.register(QueueEntry)
class QueueEntryAdmin(StoreScopedAdmin, PhoneSearchMixin, admin.ModelAdmin):
    store_lookups = ("order__store",)
    phone_search_field = "order__customer__phone"
    # The phone under the name: every column fits beside the filter on a 1280-1400 px window.
    list_display = [
        "priority",
        "order_number",
        "customer",
        "reason_column",
        "waiting",
        "store",
        "rule",
        "state",
    ]

    @admin.display(description=_("reason"), ordering="reason")
    def reason_column(self, entry: QueueEntry) -> str:
        return entry.reason_shown

    list_display_links = ["priority"]
    list_filter = [QueueStateFilter, ("order__store", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["order__customer", "order__store", "rule"]
    search_fields = ["order__number", "order__customer__name", "order__customer__phone", "reason"]
    search_help_text = _("Order number, customer name or phone, or the reason.")
    actions = ["mark_done"]
    fields = readonly_fields = [
        "order_number",
        "customer_name",
        "customer_phone",
        "priority",
        "reason_column",
        "rule",
        "state",
        "created_at",
        "closed_at",
        "closed_by",
        "close_reason",
    ]

    def has_add_permission(self, request):
        return False  # entries are made by the rules

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # change_queueentry allows "mark done" on the list; an entry's page itself is read-only.
        return obj is None and super().has_change_permission(request)

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, entry: QueueEntry):
        return order_link(self.admin_site, entry.order)

    @admin.display(description=_("customer"), ordering="order__customer__name")
    def customer_name(self, entry: QueueEntry):
        return entry.order.customer.name

    @admin.display(description=_("customer"), ordering="order__customer__name")
    def customer(self, entry: QueueEntry):
        customer = entry.order.customer
        return format_html(
            '{}<br><span dir="ltr">{}</span>', customer.name, customer.phone or customer.phone_raw
        )

    @admin.display(description=_("phone"), ordering="order__customer__phone")
    def customer_phone(self, entry: QueueEntry):
        customer = entry.order.customer
        return customer.phone or customer.phone_raw

    @admin.display(description=_("waiting"), ordering="created_at")
    def waiting(self, entry: QueueEntry):
        return timesince(entry.created_at) if entry.state == QueueEntry.State.OPEN else "-"

    @admin.display(description=_("store"), ordering="order__store__name")
    def store(self, entry: QueueEntry):
        return entry.order.store

    @admin.action(description=_("Mark the selected entries done"), permissions=["change"])
    def mark_done(self, request, queryset):
        closed = [
            entry
            for entry in queryset.select_related("order").order_by("pk")
            if queue_entry_close(entry, actor=request.user)
        ]
        if closed:
            self.message_user(
                request,
                gettext("Done: %(orders)s.") % {"orders": ", ".join(entry.order.number for entry in closed)},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, gettext("The selected entries were already done."), messages.WARNING)
