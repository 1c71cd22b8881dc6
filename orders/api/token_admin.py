"""Admin → API tokens: make one (its key is shown once, in the answer to the form), list them by
prefix, owner and last use, revoke them.

A user sees and manages their own tokens (``orders.add_apitoken``, ``view_…``, ``change_…``,
``delete_…``); with ``orders.manage_others_apitoken`` (superusers) also everyone's, and may make a
token for another user.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from orders.api.models import ApiToken
from orders.api.tokens import MANAGE_OTHERS, api_token_create, api_token_revoke


class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "key_prefix", "user", "created_at", "last_used_at", "expires_at", "state"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    actions = ["revoke"]
    readonly_fields = ["user", "key_prefix", "created_at", "created_by", "last_used_at", "revoked_at"]

    # --- whose tokens ---------------------------------------------------------------------
    def manages_others(self, request) -> bool:
        return request.user.has_perm(MANAGE_OTHERS)

    def get_queryset(self, request):
        tokens = super().get_queryset(request)
        return tokens if self.manages_others(request) else tokens.filter(user=request.user)

    def _own_or_managed(self, request, token) -> bool:
        return token is None or token.user_id == request.user.pk or self.manages_others(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._own_or_managed(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._own_or_managed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._own_or_managed(request, obj)

    # --- the forms --------------------------------------------------------------------------
    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "expires_at"] if self.manages_others(request) else ["name", "expires_at"]
        return [
            "name",
            "user",
            "key_prefix",
            "created_at",
            "created_by",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "user" in form.base_fields:
            form.base_fields["user"].queryset = get_user_model().objects.filter(is_active=True)
            form.base_fields["user"].initial = request.user.pk
        return form

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=[name for name in ("name", "expires_at") if name in form.changed_data])
            return
        token, key = api_token_create(
            form.cleaned_data.get("user") or request.user,
            name=form.cleaned_data["name"],
            actor=request.user,
            expires_at=form.cleaned_data.get("expires_at"),
        )
        # The admin goes on with the object it gave us (log entry, answer): make it the saved row.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        obj.key_shown_once = key

    def response_add(self, request, obj, post_url_continue=None):
        """The key, once: this answer is the only place it ever appears (admin_view's never_cache
        keeps browsers and proxies from storing it)."""
        change_url = reverse(f"{self.admin_site.name}:orders_apitoken_change", args=[quote(obj.pk)])
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("API token “%(name)s” created") % {"name": obj.name},
            "opts": self.opts,
            "original": obj,
            "key": obj.key_shown_once,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/orders/apitoken/key_once.html", context)

    # --- list -------------------------------------------------------------------------------
    @admin.display(description=_("Key"), ordering="prefix")
    def key_prefix(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(description=_("State"))
    def state(self, token: ApiToken) -> str:
        if token.revoked_at:
            return gettext("revoked")
        return gettext("active") if token.is_usable() else gettext("expired")

    @admin.action(description=_("Revoke selected API tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(api_token_revoke(token, actor=request.user) for token in queryset)
        messages.success(
            request,
            ngettext(
                "%(count)s API token revoked: it stops working now.",
                "%(count)s API tokens revoked: they stop working now.",
                revoked,
            )
            % {"count": revoked},
        )
