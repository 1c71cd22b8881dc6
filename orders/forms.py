"""Admin forms for stores: the platform's signing secret (write-only) and the COD gateway names."""

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import Store


class LinesField(forms.CharField):
    """A list of strings edited one per line; blank lines are dropped."""

    widget = forms.Textarea(attrs={"rows": 6, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list | tuple):
            lines = [str(item) for item in value]
        else:
            lines = (super().to_python(value) or "").splitlines()
        return [line.strip() for line in lines if line.strip()]

    def has_changed(self, initial, data) -> bool:
        return self.to_python(initial or []) != self.to_python(data)


class StoreAdminForm(forms.ModelForm):
    # No Meta: the admin builds it from StoreAdmin's fieldsets.
    new_platform_secret = forms.CharField(
        label=_("Platform signing secret (leave blank to keep)"),
        required=False,
        max_length=Store._meta.get_field("platform_secret").max_length,
        # Never rendered back, not even after a failed save of the rest of the form.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Shopify: the app's client secret (or the signing secret shown under Settings → "
            "Notifications → Webhooks). YouCan: the app's client secret. Stored, never shown again."
        ),
    )
    cod_gateway_names = LinesField(
        label=_("COD gateway names"),
        required=False,
        help_text=_(
            "One per line. A payment gateway whose name contains one of these (any case) "
            "means cash on delivery."
        ),
    )
