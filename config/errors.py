"""Error pages: JSON under /api/ and /webhooks/, Django's HTML pages everywhere else.

Django answers a URL that matches nothing (``/api/orders/abc/``), an ``Http404`` or
``PermissionDenied`` raised outside DRF, a ``SuspiciousOperation`` (a bad Host, a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE``) and an unhandled error with these handlers (when ``DEBUG`` is
off). A store, a carrier or an integration reads JSON; ``{"detail": …}`` is what DRF answers.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults

MACHINE_PATHS = ("/api/", "/webhooks/")


def _for_machines(request) -> bool:
    return request.path_info.startswith(MACHINE_PATHS)


def bad_request(request, exception):
    if not _for_machines(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": "Request body too large."}, status=413)
    return JsonResponse({"detail": "Bad request."}, status=400)


def permission_denied(request, exception):
    if not _for_machines(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)


def page_not_found(request, exception):
    if not _for_machines(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request):
    if not _for_machines(request):
        return defaults.server_error(request)
    return JsonResponse({"detail": "Server error."}, status=500)
