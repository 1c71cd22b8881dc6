"""Who may call what. Scoping to the user's stores is the selectors' job (orders.api.selectors):
an object of another store is simply not found (404), never refused (403)."""

from rest_framework.permissions import BasePermission


class HasModelPermissionForMethod(BasePermission):
    """The Django model permission a view names for an HTTP method, e.g.
    ``required_permissions = {"POST": "orders.add_order"}``; methods not named need none."""

    def has_permission(self, request, view) -> bool:
        permission = getattr(view, "required_permissions", {}).get(request.method)
        if permission is None:
            return True
        if request.user.has_perm(permission):
            return True
        self.message = f"You do not have the permission “{permission}”."
        return False
