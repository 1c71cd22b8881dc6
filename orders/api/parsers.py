"""The API's request bodies: JSON of a bounded size, read without recursing on it."""

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant

from orders import untrusted_json


class RequestBodyTooLarge(APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "request_too_large"


class UntrustedJSONParser(JSONParser):
    """DRF's JSON parser, except that:

    - a body nested deeper than ``untrusted_json.MAX_DEPTH`` is a 400 like any other unreadable JSON
      (DRF's parser raised RecursionError: a 500);
    - a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413 (DRF reads the request stream, which
      Django's own limit on ``request.body`` never sees).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})  # a text codec, or a 400
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise RequestBodyTooLarge()
        try:
            return untrusted_json.loads(
                body.decode(encoding), parse_constant=strict_constant if self.strict else None
            )
        except ValueError as exc:  # UnicodeDecodeError and JSONTooDeep included
            raise ParseError(f"JSON parse error - {exc}") from None
