"""Carriers' webhooks: ``/webhooks/carriers/<carrier>/<account id>/``. Verify, keep raw, answer.

Each carrier signs its own way (the adapter's ``verify_webhook``: an HMAC header, a token in a
header or in the URL); a push that fails is refused 401 with a log line that holds no payload. A
verified one is kept in the store inbox and answered 200 at once; the drain applies it
(``carriers.services.webhooks``). Yalidine's subscription check (``GET ?subscribe&crc_token=``) is
answered with its token. Shiprocket refuses URLs that contain its name, so its path uses the
adapter's ``webhook_path`` alias.
"""

import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from carriers.adapters import adapter_for_webhook_path
from carriers.models import CarrierAccount
from carriers.services.accounts import carrier_account_adapter
from carriers.services.webhooks import QUERY_STRING, carrier_webhook_receive
from orders.webhooks import body_within_limit

logger = logging.getLogger(__name__)


@csrf_exempt
def carrier_webhook(request, carrier_path: str, account_id: int):
    cls = adapter_for_webhook_path(carrier_path)
    account = None
    if cls is not None:
        account = (
            CarrierAccount.objects.select_related("store")
            .filter(pk=account_id, carrier=cls.name, enabled=True)
            .first()
        )
    if account is None:
        logger.warning(
            "carrier webhook for an unknown account carrier=%s account=%s", carrier_path, account_id
        )
        return JsonResponse({"detail": "Unknown carrier account."}, status=404)
    if request.method == "GET":
        challenge = getattr(cls, "webhook_challenge", None)
        token = challenge(request.GET) if challenge else None
        if token is not None:
            return HttpResponse(token, content_type="text/plain")
    if request.method not in ("POST", *(("GET",) if getattr(cls, "webhook_accepts_get", False) else ())):
        answer = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        answer["Allow"] = "POST"
        return answer
    body = body_within_limit(request)
    if body is None:
        logger.warning("carrier webhook refused: body too large carrier=%s account=%s", cls.name, account.pk)
        return JsonResponse({"detail": "Payload too large."}, status=413)
    headers = dict(request.headers)
    headers[QUERY_STRING] = request.META.get("QUERY_STRING", "")
    if not carrier_account_adapter(account, for_webhooks=True).verify_webhook(headers, body):
        # Nothing of the payload in the log: it is unauthenticated and may carry personal data.
        logger.warning(
            "carrier webhook refused: bad or missing signature carrier=%s account=%s bytes=%s",
            cls.name,
            account.pk,
            len(body),
        )
        return JsonResponse({"detail": "Bad or missing signature."}, status=401)
    delivery_id, created = carrier_webhook_receive(account, headers, body)
    return JsonResponse({"delivery": delivery_id, "duplicate": not created}, status=200)
