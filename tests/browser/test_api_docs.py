"""The API's Swagger UI in a real browser: it renders Livra's schema from this server alone."""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from tests.browser.conftest import browser_missing
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "-"),
    pytest.mark.django_db(transaction=True),
]


def test_the_api_docs_render_the_livra_schema_without_fetching_anything_from_elsewhere(
    browser_as, live_server
):
    page = browser_as(UserFactory())
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))

    page.goto(reverse("api:docs"))

    page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
    assert "Livra API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock-summary-path", has_text="/api/orders/").count() >= 1
    assert hosts == {urlsplit(live_server.url).netloc}
