"""Admin forms for messaging: template checks and preview, per-store settings, consent records."""

import json
import re
import string

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging.events import CUSTOMER_EVENTS, PLACEHOLDERS
from messaging.models import Channel, ChannelProvider, Consent, MessageTemplate
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
    "carrier": _("known once the order has shipped"),
    "tracking_link": _("known once the order has shipped with a tracking link"),
    "expected_date": _("known once the carrier gives a delivery date"),
    "items": _("the order has no items"),
    "payment_link": _("known when the store has a payment page (store settings)"),
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
        return [
            gettext("Braces do not match. Write placeholders as {name}, and a literal brace as {{ or }}.")
        ]
    problems = []
    if "" in names:
        problems.append(
            gettext("Empty braces {} are not a placeholder; write {name}, or {{}} for literal braces.")
        )
    unknown = names - set(PLACEHOLDERS) - {""}
    if unknown:
        listed = ", ".join("{" + name + "}" for name in sorted(unknown))
        problems.append(
            gettext("Unknown placeholder(s): %(unknown)s. Allowed: %(allowed)s.")
            % {"unknown": listed, "allowed": ALLOWED_PLACEHOLDERS}
        )
    # Refused at send time too (rendering.placeholders_in); said here in the editor's terms.
    decorated = sorted(
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _, name, spec, conversion in string.Formatter().parse(text)
        if name is not None and (spec or conversion)
    )
    if decorated:
        problems.append(
            gettext("Placeholders take no format or conversion: %(placeholders)s.")
            % {"placeholders": ", ".join(decorated)}
        )
    return problems


def parse_json_list(value, what: str) -> list:
    """``what`` names the field in the error, translated by the caller (e.g. "Buttons")."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as exc:
            raise ValidationError(
                # Translators: %(field)s is a field's name, e.g. "Buttons"; %(error)s is the JSON parser's.
                gettext("%(field)s must be a JSON list: %(error)s") % {"field": what, "error": exc}
            ) from exc
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(
            # Translators: %(field)s is a field's name, e.g. "Buttons".
            gettext("%(field)s must be a JSON list, e.g. []") % {"field": what}
        )
    return value


def check_body_parameters(value) -> list[str]:
    parameters = parse_json_list(value, gettext("Body parameters"))
    problems = []
    for parameter in parameters:
        if not isinstance(parameter, str):
            problems.append(gettext("%(value)s is not a placeholder name.") % {"value": repr(parameter)})
        elif parameter.startswith("{") or parameter.endswith("}"):
            problems.append(
                gettext('Write %(value)s without braces, e.g. "order_number".') % {"value": parameter}
            )
        elif parameter not in PLACEHOLDERS:
            problems.append(
                gettext("Unknown placeholder %(value)s. Allowed: %(allowed)s.")
                % {"value": repr(parameter), "allowed": ", ".join(PLACEHOLDERS)}
            )
    if problems:
        raise ValidationError(problems)
    return parameters


def check_buttons(value) -> list[dict]:
    buttons = parse_json_list(value, gettext("Buttons"))
    if len(buttons) > MAX_BUTTONS:
        raise ValidationError(
            gettext("At most %(max)s buttons; there are %(count)s.")
            % {"max": MAX_BUTTONS, "count": len(buttons)}
        )
    problems, ids = [], set()
    for position, button in enumerate(buttons, start=1):
        if not isinstance(button, dict) or set(button) - {"id", "title"}:
            problems.append(
                gettext('Button %(position)s must be {"id": "…", "title": "…"}.') % {"position": position}
            )
            continue
        button_id, title = button.get("id"), button.get("title")
        if not isinstance(button_id, str) or not button_id.strip():
            problems.append(
                gettext("Button %(position)s needs an id (what the reply carries back, e.g. confirm).")
                % {"position": position}
            )
        elif len(button_id) > MAX_BUTTON_ID:
            problems.append(
                gettext("Button %(position)s's id is longer than %(max)s characters.")
                % {"position": position, "max": MAX_BUTTON_ID}
            )
        elif button_id in ids:
            problems.append(
                gettext("Button %(position)s's id %(id)s is used twice.")
                % {"position": position, "id": repr(button_id)}
            )
        else:
            ids.add(button_id)
        if not isinstance(title, str) or not title.strip():
            problems.append(gettext("Button %(position)s needs a title.") % {"position": position})
        elif len(title) > MAX_BUTTON_TITLE:
            problems.append(
                gettext("Button %(position)s's title %(title)s is %(length)s characters; at most %(max)s.")
                % {"position": position, "title": repr(title), "length": len(title), "max": MAX_BUTTON_TITLE}
            )
    if problems:
        raise ValidationError(problems)
    return buttons


class MessageTemplateForm(forms.ModelForm):
    event = forms.ChoiceField(
        label=capfirst(MessageTemplate._meta.get_field("event").verbose_name),
        choices=[(event, event) for event in CUSTOMER_EVENTS],
    )
    language = forms.ChoiceField(
        label=capfirst(MessageTemplate._meta.get_field("language").verbose_name), choices=LANGUAGES.choices
    )

    # No Meta: the admin builds it from MessageTemplateAdmin's fieldsets.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "body" not in self.fields:
            return  # a view-only page (no change permission, or a default template): nothing to edit
        help_texts = {
            "body": gettext("Placeholders: %(placeholders)s") % {"placeholders": ALLOWED_PLACEHOLDERS},
            "body_parameters": gettext(
                'Placeholder names in the order the approved template expects, e.g. ["order_number"]'
            ),
            "buttons": gettext(
                'WhatsApp quick replies, at most %(max)s: [{"id": "confirm", "title": "Confirm"}], '
                "titles of at most %(max_title)s characters"
            )
            % {"max": MAX_BUTTONS, "max_title": MAX_BUTTON_TITLE},
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
            self.add_error("subject", gettext("An e-mail template needs a subject."))
        if channel and channel != Channel.WHATSAPP and cleaned.get("buttons"):
            self.add_error("buttons", gettext("Buttons are only sent on WhatsApp."))
        return cleaned


class TemplatePreviewForm(forms.Form):
    """The unsaved text of a template change form, and the order to render it for."""

    # The labels name the fields in the preview's error lines.
    order = forms.CharField(
        label=_("order"), max_length=60, help_text=_("Order id or number, e.g. 42 or #1042")
    )
    store = forms.IntegerField(label=_("store"), required=False)
    language = forms.ChoiceField(label=_("language"), choices=LANGUAGES.choices)
    subject = forms.CharField(label=_("subject"), required=False, strip=False)
    body = forms.CharField(label=_("body"), required=False, strip=False)
    body_parameters = forms.CharField(label=_("body parameters"), required=False)

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
            raise ValidationError(
                gettext("Several orders have the number %(number)s; enter the order id instead.")
                % {"number": wanted}
            )
        if not found:
            if store_id:
                raise ValidationError(
                    gettext("No order of this template's store has the id or number %(wanted)s.")
                    % {"wanted": wanted}
                )
            raise ValidationError(gettext("No order has the id or number %(wanted)s.") % {"wanted": wanted})
        return found[0]

    def preview(self) -> dict:
        """The rendered parts, each with its text or the reason it cannot be rendered."""
        order, language = self.cleaned_data["order"], self.cleaned_data["language"]
        context = order_context(order, language)
        parts = []
        if self.cleaned_data["subject"]:
            parts.append(self._part(gettext("Subject"), self.cleaned_data["subject"], context, order))
        parts.append(self._part(gettext("Body"), self.cleaned_data["body"], context, order))
        try:
            parameters = check_body_parameters(self.cleaned_data["body_parameters"])
        except ValidationError as exc:
            parts.append({"label": gettext("Body parameters"), "error": " ".join(exc.messages)})
        else:
            for position, name in enumerate(parameters, start=1):
                label = gettext("Parameter {{%(position)s}}") % {"position": position}
                parts.append(self._part(label, "{" + name + "}", context, order))
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
            why = "; ".join(TemplatePreviewForm._no_value(name, order) for name in missing)
            return {"label": label, "error": gettext("Cannot render: %(why)s.") % {"why": why}}

    @staticmethod
    def _no_value(name: str, order) -> str:
        values = {"placeholder": "{" + name + "}", "number": order.number}
        if name in KNOWN_LATER:
            return gettext("%(placeholder)s has no value for order %(number)s (%(why)s)") % {
                **values,
                "why": KNOWN_LATER[name],
            }
        return gettext("%(placeholder)s has no value for order %(number)s") % values


# --- per-store settings ----------------------------------------------------------------------
class MessagingSettingsForm(forms.ModelForm):
    # No Meta: the admin builds it for MessagingSettings.
    def clean_channel_order(self):
        channels = parse_json_list(self.cleaned_data.get("channel_order"), gettext("Channel order"))
        unknown = [channel for channel in channels if channel not in Channel.values]
        if unknown:
            raise ValidationError(
                gettext("Unknown channel(s): %(unknown)s. Channels: %(channels)s.")
                % {"unknown": ", ".join(map(str, unknown)), "channels": ", ".join(Channel.values)}
            )
        if len(set(channels)) != len(channels):
            raise ValidationError(gettext("Each channel may appear only once."))
        if not channels:
            raise ValidationError(gettext('List at least one channel, e.g. ["whatsapp", "sms", "email"].'))
        return channels

    def clean_receipt_timeouts(self):
        timeouts = self.cleaned_data.get("receipt_timeouts")
        if not isinstance(timeouts, dict):
            raise ValidationError(gettext('Receipt timeouts must be a JSON object, e.g. {"whatsapp": 600}.'))
        problems = []
        for channel, seconds in timeouts.items():
            if channel not in Channel.values:
                problems.append(
                    gettext("Unknown channel %(channel)s. Channels: %(channels)s.")
                    % {"channel": repr(channel), "channels": ", ".join(Channel.values)}
                )
            elif isinstance(seconds, bool) or not isinstance(seconds, int):
                problems.append(
                    gettext("The timeout for %(channel)s must be a whole number of seconds.")
                    % {"channel": channel}
                )
            elif not MIN_RECEIPT_TIMEOUT <= seconds <= MAX_RECEIPT_TIMEOUT:
                problems.append(
                    gettext("The timeout for %(channel)s must be between %(min)s and %(max)s seconds.")
                    % {"channel": channel, "min": MIN_RECEIPT_TIMEOUT, "max": MAX_RECEIPT_TIMEOUT}
                )
        if problems:
            raise ValidationError(problems)
        return timeouts

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("quiet_hours_start"), cleaned.get("quiet_hours_end")
        if (start is None) != (end is None):
            self.add_error("quiet_hours_end", gettext("Set both ends of the quiet hours, or neither."))
        return cleaned


class ChannelProviderForm(forms.ModelForm):
    provider = forms.ChoiceField(label=capfirst(ChannelProvider._meta.get_field("provider").verbose_name))

    # No Meta: the admin builds it for ChannelProvider.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(name, name) for name in provider_names()]
        self.fields["provider"].help_text = gettext("A registered provider that can send on this channel.")
        self.fields["credentials_env_prefix"].help_text = gettext(
            "Only a prefix, never a secret: credentials are read from environment variables named "
            "PREFIX_NAME (e.g. LIVRA_TWILIO_AUTH_TOKEN) when a message is sent, and are never "
            "stored or displayed here."
        )

    def clean_credentials_env_prefix(self):
        prefix = self.cleaned_data.get("credentials_env_prefix", "").strip()
        if prefix and not ENV_PREFIX.match(prefix):
            raise ValidationError(
                gettext(
                    "Use an environment variable prefix in capitals, digits and underscores, "
                    "e.g. LIVRA_TWILIO."
                )
            )
        return prefix

    def clean(self):
        cleaned = super().clean()
        provider, channel = cleaned.get("provider"), cleaned.get("channel")
        if provider and channel and channel not in get_provider(provider).channels:
            self.add_error(
                "provider",
                gettext("%(provider)s does not send on %(channel)s.")
                % {"provider": provider, "channel": channel},
            )
        return cleaned


# --- consent ---------------------------------------------------------------------------------
class ConsentRecordForm(forms.Form):
    """An agent records what a customer said about a channel, with the reason, as evidence."""

    MARKETING_CHOICES = [("", _("Leave as it is")), ("yes", _("Yes")), ("no", _("No"))]

    customer = forms.ModelChoiceField(
        label=capfirst(Consent._meta.get_field("customer").verbose_name), queryset=Customer.objects.none()
    )
    channel = forms.ChoiceField(
        label=capfirst(Consent._meta.get_field("channel").verbose_name), choices=Channel.choices
    )
    status = forms.ChoiceField(
        label=capfirst(Consent._meta.get_field("status").verbose_name), choices=Consent.Status.choices
    )
    marketing = forms.ChoiceField(
        label=capfirst(Consent._meta.get_field("marketing").verbose_name),
        choices=MARKETING_CHOICES,
        required=False,
        help_text=_("An opt-out always ends marketing consent too."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("How the customer told you."),
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
