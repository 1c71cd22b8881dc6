"""Admin forms for messaging: template checks and preview, per-store settings, consent records."""

import json
import re
import string

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError

from messaging.events import CUSTOMER_EVENTS, PLACEHOLDERS
from messaging.models import Channel, Consent
from messaging.providers import get_provider, provider_names
from messaging.services.rendering import (
    RenderError,
    order_context,
    placeholders_in,
    render_text,
)
from orders.models import Customer

LANGUAGES = Customer.Language
RTL_LANGUAGES = frozenset({LANGUAGES.ARABIC})
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20  # WhatsApp reply buttons
MAX_BUTTON_ID = 256
ALLOWED_PLACEHOLDERS = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
# Values an order only gets later: the preview says why they are empty instead of just failing.
KNOWN_LATER = {
    "carrier": "known once the order has shipped",
    "tracking_link": "known once the order has shipped with a tracking link",
    "expected_date": "known once the carrier gives a delivery date",
    "items": "the order has no items",
    "payment_link": "known when the store has a payment page (store settings)",
}
MIN_RECEIPT_TIMEOUT, MAX_RECEIPT_TIMEOUT = 60, 86_400
ENV_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9]$")


def text_direction(language: str) -> str:
    return "rtl" if language in RTL_LANGUAGES else "ltr"


# --- templates -------------------------------------------------------------------------------
def template_text_problems(text: str) -> list[str]:
    """What is wrong with a template text, for the person editing it; [] when it is fine."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return ["Braces do not match. Write placeholders as {name}, and a literal brace as {{ or }}."]
    problems = []
    if "" in names:
        problems.append("Empty braces {} are not a placeholder; write {name}, or {{}} for literal braces.")
    unknown = names - set(PLACEHOLDERS) - {""}
    if unknown:
        listed = ", ".join("{" + name + "}" for name in sorted(unknown))
        problems.append(f"Unknown placeholder(s): {listed}. Allowed: {ALLOWED_PLACEHOLDERS}.")
    # Refused at send time too (rendering.placeholders_in); said here in the editor's terms.
    decorated = sorted(
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _, name, spec, conversion in string.Formatter().parse(text)
        if name is not None and (spec or conversion)
    )
    if decorated:
        problems.append(f"Placeholders take no format or conversion: {', '.join(decorated)}.")
    return problems


def parse_json_list(value, what: str) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as exc:
            raise ValidationError(f"{what} must be a JSON list: {exc}") from exc
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{what} must be a JSON list, e.g. []")
    return value


def check_body_parameters(value) -> list[str]:
    parameters = parse_json_list(value, "Body parameters")
    problems = []
    for parameter in parameters:
        if not isinstance(parameter, str):
            problems.append(f"{parameter!r} is not a placeholder name.")
        elif parameter.startswith("{") or parameter.endswith("}"):
            problems.append(f'Write {parameter} without braces, e.g. "order_number".')
        elif parameter not in PLACEHOLDERS:
            problems.append(f"Unknown placeholder {parameter!r}. Allowed: {', '.join(PLACEHOLDERS)}.")
    if problems:
        raise ValidationError(problems)
    return parameters


def check_buttons(value) -> list[dict]:
    buttons = parse_json_list(value, "Buttons")
    if len(buttons) > MAX_BUTTONS:
        raise ValidationError(f"At most {MAX_BUTTONS} buttons; there are {len(buttons)}.")
    problems, ids = [], set()
    for position, button in enumerate(buttons, start=1):
        if not isinstance(button, dict) or set(button) - {"id", "title"}:
            problems.append(f'Button {position} must be {{"id": "…", "title": "…"}}.')
            continue
        button_id, title = button.get("id"), button.get("title")
        if not isinstance(button_id, str) or not button_id.strip():
            problems.append(f"Button {position} needs an id (what the reply carries back, e.g. confirm).")
        elif len(button_id) > MAX_BUTTON_ID:
            problems.append(f"Button {position}'s id is longer than {MAX_BUTTON_ID} characters.")
        elif button_id in ids:
            problems.append(f"Button {position}'s id {button_id!r} is used twice.")
        else:
            ids.add(button_id)
        if not isinstance(title, str) or not title.strip():
            problems.append(f"Button {position} needs a title.")
        elif len(title) > MAX_BUTTON_TITLE:
            problems.append(f"Button {position}'s title {title!r} is {len(title)} characters; at most 20.")
    if problems:
        raise ValidationError(problems)
    return buttons


class MessageTemplateForm(forms.ModelForm):
    event = forms.ChoiceField(choices=[(event, event) for event in CUSTOMER_EVENTS])
    language = forms.ChoiceField(choices=LANGUAGES.choices)

    # No Meta: the admin builds it from MessageTemplateAdmin's fieldsets.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "body" not in self.fields:
            return  # a view-only page (no change permission, or a default template): nothing to edit
        help_texts = {
            "body": f"Placeholders: {ALLOWED_PLACEHOLDERS}",
            "body_parameters": (
                'Placeholder names in the order the approved template expects, e.g. ["order_number"]'
            ),
            "buttons": (
                f'WhatsApp quick replies, at most {MAX_BUTTONS}: [{{"id": "confirm", "title": "Confirm"}}], '
                f"titles of at most {MAX_BUTTON_TITLE} characters"
            ),
        }
        for name, text in help_texts.items():
            self.fields[name].help_text = text
        language = self["language"].value() or self.instance.language
        for name in ("subject", "body"):
            attrs = self.fields[name].widget.attrs
            # Arabic is shown right-to-left; dir="auto" lets mixed texts find their own way.
            attrs["dir"] = "rtl" if language in RTL_LANGUAGES else "auto"
            if language:
                attrs["lang"] = language

    def _clean_text(self, name: str) -> str:
        text = self.cleaned_data.get(name) or ""
        problems = template_text_problems(text)
        if problems:
            raise ValidationError(problems)
        return text

    def clean_subject(self):
        return self._clean_text("subject")

    def clean_body(self):
        return self._clean_text("body")

    def clean_body_parameters(self):
        return check_body_parameters(self.cleaned_data.get("body_parameters"))

    def clean_buttons(self):
        return check_buttons(self.cleaned_data.get("buttons"))

    def clean(self):
        cleaned = super().clean()
        channel = cleaned.get("channel")
        if channel == Channel.EMAIL and "subject" in cleaned and not cleaned["subject"].strip():
            self.add_error("subject", "An e-mail template needs a subject.")
        if channel and channel != Channel.WHATSAPP and cleaned.get("buttons"):
            self.add_error("buttons", "Buttons are only sent on WhatsApp.")
        return cleaned


class TemplatePreviewForm(forms.Form):
    """The unsaved text of a template change form, and the order to render it for."""

    order = forms.CharField(max_length=60, help_text="Order id or number, e.g. 42 or #1042")
    store = forms.IntegerField(required=False)
    language = forms.ChoiceField(choices=LANGUAGES.choices)
    subject = forms.CharField(required=False, strip=False)
    body = forms.CharField(required=False, strip=False)
    body_parameters = forms.CharField(required=False)

    def __init__(self, *args, orders, **kwargs):
        super().__init__(*args, **kwargs)
        self.orders = orders  # those the user may see: their stores'

    def clean_order(self):
        wanted = self.cleaned_data["order"].strip()
        orders = self.orders.select_related("store", "customer")
        store_id = self.data.get("store") or None
        if store_id and str(store_id).isdigit():
            orders = orders.filter(store_id=int(store_id))
        if wanted.isdigit():
            order = orders.filter(pk=int(wanted)).first()
            if order is not None:
                return order
        numbers = {wanted, wanted.lstrip("#"), "#" + wanted.lstrip("#")}
        found = list(orders.filter(number__in=numbers)[:2])
        if len(found) > 1:
            raise ValidationError(f"Several orders have the number {wanted}; enter the order id instead.")
        if not found:
            scope = " of this template's store" if store_id else ""
            raise ValidationError(f"No order{scope} has the id or number {wanted}.")
        return found[0]

    def preview(self) -> dict:
        """The rendered parts, each with its text or the reason it cannot be rendered."""
        order, language = self.cleaned_data["order"], self.cleaned_data["language"]
        context = order_context(order, language)
        parts = []
        if self.cleaned_data["subject"]:
            parts.append(self._part("Subject", self.cleaned_data["subject"], context, order))
        parts.append(self._part("Body", self.cleaned_data["body"], context, order))
        try:
            parameters = check_body_parameters(self.cleaned_data["body_parameters"])
        except ValidationError as exc:
            parts.append({"label": "Body parameters", "error": " ".join(exc.messages)})
        else:
            for position, name in enumerate(parameters, start=1):
                parts.append(self._part(f"Parameter {{{{{position}}}}}", "{" + name + "}", context, order))
        return {
            "order": order,
            "language": language,
            "language_name": LANGUAGES(language).label,
            "direction": text_direction(language),
            "parts": parts,
        }

    @staticmethod
    def _part(label: str, text: str, context: dict, order) -> dict:
        problems = template_text_problems(text)
        if problems:
            return {"label": label, "error": " ".join(problems)}
        try:
            return {"label": label, "text": render_text(text, context)}
        except RenderError:
            missing = sorted(name for name in placeholders_in(text) if context.get(name) in (None, ""))
            why = "; ".join(
                f"{{{name}}} has no value for order {order.number}"
                + (f" ({KNOWN_LATER[name]})" if name in KNOWN_LATER else "")
                for name in missing
            )
            return {"label": label, "error": f"Cannot render: {why}."}


# --- per-store settings ----------------------------------------------------------------------
class MessagingSettingsForm(forms.ModelForm):
    # No Meta: the admin builds it for MessagingSettings.
    def clean_channel_order(self):
        channels = parse_json_list(self.cleaned_data.get("channel_order"), "Channel order")
        unknown = [channel for channel in channels if channel not in Channel.values]
        if unknown:
            raise ValidationError(
                f"Unknown channel(s): {', '.join(map(str, unknown))}. Channels: {', '.join(Channel.values)}."
            )
        if len(set(channels)) != len(channels):
            raise ValidationError("Each channel may appear only once.")
        if not channels:
            raise ValidationError('List at least one channel, e.g. ["whatsapp", "sms", "email"].')
        return channels

    def clean_receipt_timeouts(self):
        timeouts = self.cleaned_data.get("receipt_timeouts")
        if not isinstance(timeouts, dict):
            raise ValidationError('Receipt timeouts must be a JSON object, e.g. {"whatsapp": 600}.')
        problems = []
        for channel, seconds in timeouts.items():
            if channel not in Channel.values:
                problems.append(f"Unknown channel {channel!r}. Channels: {', '.join(Channel.values)}.")
            elif isinstance(seconds, bool) or not isinstance(seconds, int):
                problems.append(f"The timeout for {channel} must be a whole number of seconds.")
            elif not MIN_RECEIPT_TIMEOUT <= seconds <= MAX_RECEIPT_TIMEOUT:
                problems.append(
                    f"The timeout for {channel} must be between {MIN_RECEIPT_TIMEOUT} and "
                    f"{MAX_RECEIPT_TIMEOUT} seconds."
                )
        if problems:
            raise ValidationError(problems)
        return timeouts

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("quiet_hours_start"), cleaned.get("quiet_hours_end")
        if (start is None) != (end is None):
            self.add_error("quiet_hours_end", "Set both ends of the quiet hours, or neither.")
        return cleaned


class ChannelProviderForm(forms.ModelForm):
    provider = forms.ChoiceField()

    # No Meta: the admin builds it for ChannelProvider.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(name, name) for name in provider_names()]
        self.fields["provider"].help_text = "A registered provider that can send on this channel."
        self.fields["credentials_env_prefix"].help_text = (
            "Only a prefix, never a secret: credentials are read from environment variables named "
            "PREFIX_NAME (e.g. LIVRA_TWILIO_AUTH_TOKEN) when a message is sent, and are never "
            "stored or displayed here."
        )

    def clean_credentials_env_prefix(self):
        prefix = self.cleaned_data.get("credentials_env_prefix", "").strip()
        if prefix and not ENV_PREFIX.match(prefix):
            raise ValidationError(
                "Use an environment variable prefix in capitals, digits and underscores, e.g. LIVRA_TWILIO."
            )
        return prefix

    def clean(self):
        cleaned = super().clean()
        provider, channel = cleaned.get("provider"), cleaned.get("channel")
        if provider and channel and channel not in get_provider(provider).channels:
            self.add_error("provider", f"{provider} does not send on {channel}.")
        return cleaned


# --- consent ---------------------------------------------------------------------------------
class ConsentRecordForm(forms.Form):
    """An agent records what a customer said about a channel, with the reason, as evidence."""

    MARKETING_CHOICES = [("", "Leave as it is"), ("yes", "Yes"), ("no", "No")]

    customer = forms.ModelChoiceField(queryset=Customer.objects.none())
    channel = forms.ChoiceField(choices=Channel.choices)
    status = forms.ChoiceField(choices=Consent.Status.choices)
    marketing = forms.ChoiceField(
        choices=MARKETING_CHOICES, required=False, help_text="An opt-out always ends marketing consent too."
    )
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="How the customer told you."
    )

    def __init__(self, *args, customers, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers.select_related("store")  # the user's stores'
        if admin_site is not None:
            # Thousands of customers: search them as the order page does, instead of one long list.
            field = self.fields["customer"]
            field.widget = AutocompleteSelect(Consent._meta.get_field("customer"), admin_site)
            field.widget.choices = field.choices

    def marketing_value(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.cleaned_data.get("marketing") or "")
