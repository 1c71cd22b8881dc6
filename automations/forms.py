"""Admin forms for automations: the rule editor (JSON conditions and actions, checked by the same
``rule_problems`` the save uses) and the dry run's choice of orders."""

import json

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.template.loader import render_to_string
from django.utils.functional import lazy
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from automations.models import Rule
from automations.services.actions import ACTIONS, POLICIES
from automations.services.conditions import FIELDS
from automations.services.engine import REPLY_INTENTS
from automations.services.rules import MAX_DRY_RUN_DAYS, rule_problems_by_field
from messaging.events import CUSTOMER_EVENTS
from messaging.models import Channel
from orders.models import Order
from orders.transitions import TRANSITIONS_BY_NAME, PaymentMethod


def _interpolate(message, values: dict) -> str:
    return message % values


def _interpolate_codes(message, values: dict) -> str:
    # The values are codes a person types into the rule (cod, whatsapp, first_delivered): shown
    # as code, apart from the translated words around them.
    codes = {name: format_html("<code>{}</code>", value) for name, value in values.items()}
    return mark_safe(conditional_escape(message) % codes)  # noqa: S308 - both sides are escaped


# The reply intents a rule answers, as the inbox names them (messaging.models.InboundMessage.Intent).
INTENT_LABELS = {
    "confirm": pgettext_lazy("reply intent", "Confirm"),
    "cancel": pgettext_lazy("reply intent", "Cancel"),
    "unclear": pgettext_lazy("reply intent", "Unclear"),
}

# A translated text with named placeholders, filled in when it is shown (in the language then).
interpolate_lazy = lazy(_interpolate, str)
# The same, with code values (for the rule editor's help, which is HTML).
interpolate_codes_lazy = lazy(_interpolate_codes, SafeString)

# What each condition field tests, and one leaf that uses it (tests check every example is valid).
CONDITION_FIELDS: dict[str, tuple[str, dict]] = {
    "payment_method": (
        interpolate_codes_lazy(
            _("how the order is paid: %(methods)s"), {"methods": ", ".join(PaymentMethod.values)}
        ),
        {"field": "payment_method", "op": "eq", "value": "cod"},
    ),
    "total_amount": (
        _("the order total, in the store's currency; between takes [low, high]"),
        {"field": "total_amount", "op": "between", "value": ["200", "999.99"]},
    ),
    "city": (
        _("the shipping city, ignoring case; in takes a list"),
        {"field": "city", "op": "in", "value": ["Casablanca", "Rabat"]},
    ),
    "tag": (_("a tag on the order"), {"field": "tag", "op": "has", "value": "vip"}),
    "first_order": (
        _("true when the customer never ordered before"),
        {"field": "first_order", "op": "eq", "value": True},
    ),
    "past_returns": (
        _("how many of the customer's other orders came back"),
        {"field": "past_returns", "op": "gte", "value": 2},
    ),
    "consent": (
        interpolate_codes_lazy(
            _("the customer opted in on a channel: %(channels)s"), {"channels": ", ".join(Channel.values)}
        ),
        {"field": "consent", "op": "has", "value": "whatsapp"},
    ),
    "time_of_day": (
        _("now, in the store's time zone, [from, to) as HH:MM; may wrap past midnight"),
        {"field": "time_of_day", "op": "between", "value": ["21:00", "09:00"]},
    ),
    "payment_link": (
        _("the store has a payment page (store settings): set or unset, no value"),
        {"field": "payment_link", "op": "set"},
    ),
    "status": (
        _("the order's status now (for replies: the status the customer's message found it in)"),
        {"field": "status", "op": "in", "value": ["confirmed", "processing"]},
    ),
    "told": (
        _("the customer was already sent this event's message about the order"),
        {"field": "told", "op": "lacks", "value": "reply_late_confirmed"},
    ),
}
CONDITIONS_EXAMPLE = {
    "all": [
        {"field": "payment_method", "op": "eq", "value": "cod"},
        {
            "any": [
                {"field": "city", "op": "in", "value": ["Casablanca", "Rabat"]},
                {"field": "total_amount", "op": "gte", "value": "500"},
            ]
        },
    ]
}

# What each action does, and one that uses it (tests check every example is valid on EXAMPLE_RULE).
ACTION_TYPES: dict[str, tuple[str, dict]] = {
    "notify": (
        interpolate_codes_lazy(
            _(
                "send the customer the message of an event; policy %(first_delivered)s or %(all_opted_in)s "
                "(the first channel that delivers, or every channel the customer opted in on); optional "
                "at_most_every_minutes: not again while the order's last one is younger (one answer to a "
                "burst of messages)"
            ),
            dict(zip(("first_delivered", "all_opted_in"), POLICIES, strict=True)),
        ),
        {"type": "notify", "event": "confirmation_reminder", "policy": "first_delivered"},
    ),
    "transition": (
        _("move the order on, as an agent's button would (only one that can apply from the rule's status)"),
        {"type": "transition", "name": "confirm"},
    ),
    "cancel": (
        _("cancel the order, with the reason on its timeline"),
        {"type": "cancel", "reason": "not confirmed within 24 hours"},
    ),
    "queue": (
        _("put the order in the confirmation queue for an agent (higher priority first)"),
        {"type": "queue", "priority": 70, "reason": "the customer's answer needs a human"},
    ),
    "tag": (_("add or remove a tag"), {"type": "tag", "add": "reminded"}),
    "team_alert": (
        _("tell the team (on the order's timeline and the ops log)"),
        {"type": "team_alert", "text": "no carrier news for 72 hours"},
    ),
}
# The rule the action examples are valid on: an order waiting for its confirmation.
EXAMPLE_RULE = {"trigger": "in_status_for", "status": "awaiting_confirmation", "delay_minutes": 30}


def as_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def conditions_help() -> str:
    return render_to_string(
        "admin/automations/rule/conditions_help.html",
        {
            "fields": [
                {"name": name, "ops": FIELDS[name], "meaning": meaning, "example": as_json(example)}
                for name, (meaning, example) in CONDITION_FIELDS.items()
            ],
            "example": json.dumps(CONDITIONS_EXAMPLE, indent=2, ensure_ascii=False),
        },
    )


def actions_help() -> str:
    return render_to_string(
        "admin/automations/rule/actions_help.html",
        {
            "actions": [
                {"type": kind, "meaning": meaning, "example": as_json(example)}
                for kind, (meaning, example) in ACTION_TYPES.items()
                if kind in ACTIONS
            ],
            "events": CUSTOMER_EVENTS,
            "transitions": tuple(TRANSITIONS_BY_NAME),
        },
    )


class IndentedJSONField(forms.JSONField):
    """A JSON textarea that shows the saved value indented, so a tree of conditions can be read."""

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


JSON_TEXTAREA = {"rows": 12, "cols": 90, "spellcheck": "false", "style": "font-family:monospace"}


class RuleForm(forms.ModelForm):
    """The rule editor. The rule's problems (``rule_problems``) show as errors on the fields they
    are about; the admin then saves through ``rule_save``, which checks them again under lock."""

    intent = forms.ChoiceField(
        label=capfirst(Rule._meta.get_field("intent").verbose_name),
        choices=[("", "---------"), *((intent, INTENT_LABELS[intent]) for intent in REPLY_INTENTS)],
        required=False,
        help_text=_("For the reply triggers (the customer replied …)"),
    )
    conditions = IndentedJSONField(
        label=capfirst(Rule._meta.get_field("conditions").verbose_name),
        required=False,
        widget=forms.Textarea(attrs=JSON_TEXTAREA),
        help_text="",
        initial=dict,
    )
    actions = IndentedJSONField(
        label=capfirst(Rule._meta.get_field("actions").verbose_name),
        widget=forms.Textarea(attrs=JSON_TEXTAREA),
        help_text="",
        initial=list,
    )
    loaded_version = forms.IntegerField(label=_("Loaded version"), required=False, widget=forms.HiddenInput)

    # No Meta: the admin builds it from RuleAdmin's fieldsets.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "conditions" in self.fields:
            self.fields["conditions"].help_text = conditions_help()
        if "actions" in self.fields:
            self.fields["actions"].help_text = actions_help()
        if "loaded_version" in self.fields and self.instance.pk is not None:
            self.fields["loaded_version"].initial = self.instance.version

    def clean_conditions(self):
        return self.cleaned_data.get("conditions") or {}

    def clean_actions(self):
        actions = self.cleaned_data.get("actions")
        if not isinstance(actions, list):
            raise ValidationError(gettext('Actions are a JSON list, e.g. [{"type": "queue", ...}].'))
        return actions

    def _post_clean(self):
        super()._post_clean()  # builds self.instance from the cleaned data
        if self._errors:
            return  # a field that did not parse would be checked at its old value: say that first
        loaded = self.cleaned_data.get("loaded_version")
        if self.instance.pk is not None and loaded is not None:
            current = Rule.objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
            if current is not None and current != loaded:
                self.add_error(
                    None,
                    gettext(
                        "This rule was changed since you opened it (it is now version %(version)s). "
                        "Reload it and make your change again."
                    )
                    % {"version": current},
                )
                return
        for field, problems in rule_problems_by_field(self.instance).items():
            self.add_error(field if field in self.fields else None, problems)


class DryRunForm(forms.Form):
    """One order of the rule's store, or the store's orders of the last N days."""

    order = forms.CharField(
        label=_("Order"),
        max_length=60,
        required=False,
        help_text=_("Order number or id, e.g. #1042 or 42"),
    )
    days = forms.IntegerField(
        label=_("Days"),
        min_value=1,
        max_value=MAX_DRY_RUN_DAYS,
        required=False,
        help_text=interpolate_lazy(
            _("Or: the store's orders placed in the last N days (at most %(max_days)s)"),
            {"max_days": MAX_DRY_RUN_DAYS},
        ),
    )

    def __init__(self, *args, rule: Rule, **kwargs):
        super().__init__(*args, **kwargs)
        self.rule = rule

    def clean_order(self):
        wanted = self.cleaned_data.get("order", "").strip()
        if not wanted:
            return None
        orders = Order.objects.filter(store_id=self.rule.store_id).select_related("store", "customer")
        # Numbers first: they are what agents see and type; an id is the fallback.
        numbers = {wanted, wanted.lstrip("#"), "#" + wanted.lstrip("#")}
        found = list(orders.filter(number__in=numbers)[:2])
        if len(found) > 1:
            raise ValidationError(
                gettext("Several orders have the number %(number)s; enter the order id instead.")
                % {"number": wanted}
            )
        if not found and wanted.isdigit():
            found = list(orders.filter(pk=int(wanted)))
        if not found:
            raise ValidationError(
                gettext("%(store)s has no order with the number or id %(number)s.")
                % {"store": self.rule.store, "number": wanted}
            )
        return found[0]

    def clean(self):
        cleaned = super().clean()
        has_order = bool(cleaned.get("order")) or "order" in self.errors
        has_days = cleaned.get("days") is not None or "days" in self.errors
        if not has_order and not has_days:
            raise ValidationError(gettext("Choose an order, or a number of days."))
        if has_order and has_days:
            raise ValidationError(gettext("Choose an order or a number of days, not both."))
        return cleaned
