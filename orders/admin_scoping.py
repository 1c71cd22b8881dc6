"""Stores kept apart in admin: a user who is not a superuser sees only the stores they are a member
of (``Store.members``, the same membership that scopes the API), on every page Livra registers.

Each Livra ``ModelAdmin`` inherits ``StoreScopedAdmin`` and names how its rows reach their store
(``store_lookups``). From that one declaration:

- lists, change, delete and history pages, admin actions (they act on the list's queryset),
  search and date drill-down read only the member stores' rows; another store's row answers 404,
  exactly as a row that does not exist (no 403 that would tell it exists);
- foreign-key choices in add and change forms, autocomplete (it searches the related admin's
  queryset) and the choices of relation list filters list only what the user may see, so
  nobody can file a rule, template or provider under a store they are not a member of, and no
  other store's name appears in a "store" filter;
- custom views use ``get_object`` or ``get_queryset`` and inherit the same.

Rows shared by every store (default templates, ``store`` empty) are shown to members read-only
and edited by superusers only (``shared_rows_lookup``). Rows that belong to no store at all
(the timer sweep's runs, which count every store's timers) are for superusers only
(``store_lookups = ()``).
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import Q, QuerySet
from django.http import Http404

from orders.models import Store
from orders.selectors import store_list_for_user


def scope_to_stores(
    queryset: QuerySet, user, store_lookups: tuple[str, ...], shared_rows_lookup=None
) -> QuerySet:
    """``queryset`` narrowed to the rows of ``user``'s stores (superusers: unchanged).

    ``store_lookups`` are paths from the model to its store (``"store"``, ``"order__store"``, or
    ``"pk"`` for stores themselves); a row is kept when any of them is one of the user's stores.
    ``shared_rows_lookup``: rows where it is empty are every store's and are kept too.
    """
    if user.is_superuser:
        return queryset
    if not user.is_authenticated or not store_lookups:
        return queryset.none()
    stores = store_list_for_user(user)
    condition = Q()
    for lookup in store_lookups:
        condition |= Q(**{f"{lookup}__in": stores})
    if shared_rows_lookup:
        condition |= Q(**{f"{shared_rows_lookup}__isnull": True})
    return queryset.filter(condition)


def scoped_related_queryset(admin_site, model, request) -> QuerySet | None:
    """What ``request.user`` may pick of ``model`` in a form or filter; None when it is not scoped."""
    if model is Store:
        return store_list_for_user(request.user)
    model_admin = admin_site._registry.get(model)
    if isinstance(model_admin, StoreScopedAdmin):
        queryset = model_admin.get_queryset(request)
        ordering = model_admin.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset
    return None


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A relation's list filter whose choices are only those the user may see."""

    def field_choices(self, field, request, model_admin):
        queryset = scoped_related_queryset(model_admin.admin_site, field.related_model, request)
        if queryset is None:
            return super().field_choices(field, request, model_admin)
        return [(obj.pk, str(obj)) for obj in queryset]


class ScopedFormFieldsMixin:
    """Foreign-key choices of add and change forms (inlines too) limited to the user's stores."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = scoped_related_queryset(self.admin_site, db_field.related_model, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class StoreScopedAdmin(ScopedFormFieldsMixin):
    """Mixin for every Livra ``ModelAdmin``: see the module's docstring."""

    # Paths from the model to its store; a row is shown when any of them is a member store.
    store_lookups: tuple[str, ...] = ("store",)
    # A nullable store path whose empty value means "every store's" (e.g. default templates).
    shared_rows_lookup: str | None = None

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def scope_queryset(self, request, queryset: QuerySet) -> QuerySet:
        return scope_to_stores(queryset, request.user, self.store_lookups, self.shared_rows_lookup)

    def get_object(self, request, object_id, from_field=None):
        # Not found and not yours answer alike: 404 (the admin's own answer would be a redirect
        # saying "doesn't exist", and a 403 would say it does).
        # (A user without the model's permission gets the admin's own 403 instead, whatever the id.)
        obj = super().get_object(request, object_id, from_field)
        if obj is None and self.has_view_or_change_permission(request):
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj

    def get_list_filter(self, request):
        return [self._scoped_filter(entry) for entry in super().get_list_filter(request)]

    def _scoped_filter(self, entry):
        if isinstance(entry, str):
            path, filter_class = entry, admin.RelatedFieldListFilter
        elif isinstance(entry, tuple):
            path, filter_class = entry
        else:
            return entry  # a SimpleListFilter reads the list, which is scoped already
        # Related-only filters list what the (scoped) list holds; other kinds list no rows.
        if filter_class is not admin.RelatedFieldListFilter:
            return entry
        if not get_fields_from_path(self.model, path)[-1].is_relation:
            return entry
        return (path, ScopedRelatedFieldListFilter)

    # --- rows shared by every store: read-only to members --------------------------------
    def is_shared_row(self, obj) -> bool:
        return (
            bool(self.shared_rows_lookup)
            and obj is not None
            and getattr(obj, f"{self.shared_rows_lookup}_id") is None
        )

    def has_change_permission(self, request, obj=None):
        if self.is_shared_row(obj) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if self.is_shared_row(obj) and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == self.shared_rows_lookup and not request.user.is_superuser:
            kwargs.setdefault("required", True)  # only superusers make rows for every store
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- rows of no store: superusers only -------------------------------------------------
    def has_view_permission(self, request, obj=None):
        if not self.store_lookups and not request.user.is_superuser:
            return False
        return super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        if not self.store_lookups and not request.user.is_superuser:
            return False
        return super().has_module_permission(request)


class StoreScopedInline(ScopedFormFieldsMixin):
    """Mixin for every Livra inline: its rows follow the parent's (already scoped) object; its
    foreign-key choices are limited like the parent's."""
