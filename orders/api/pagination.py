"""How the API's lists are cut into pages: ``?page=2&page_size=100``."""

from django import forms
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class ApiPagination(PageNumberPagination):
    """50 a page; ``page_size`` from 1 to 200, a larger one read as 200 (a client asking for "all"
    gets the most there is per page, not an error). Anything else (``null``, ``0``, ``-3``, ``1.5``)
    is a 400 naming ``page_size``: DRF's own pagination silently used the default instead."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    page_size_query_description = "Results per page: 1 to 200 (default 50); more is read as 200."

    def get_page_size(self, request) -> int:
        given = request.query_params.get(self.page_size_query_param)
        if given is None:
            return self.page_size
        field = forms.IntegerField(min_value=1, error_messages={"invalid": "Give a whole number."})
        try:
            size = field.clean(given)
        except forms.ValidationError as exc:
            raise ValidationError({self.page_size_query_param: exc.messages}) from None
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
