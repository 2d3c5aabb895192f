"""The API documentation (Swagger UI at /api/docs/) in a real Chromium, as an integrator reads
it. Screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_the_api_for_integrators(chromium_page: Any, shot: Any) -> None:
    page = chromium_page
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Intellicon CRM API" in page.locator(".swagger-ui .info .title").inner_text()
    intro = page.locator(".swagger-ui .info .description").inner_text()
    for needed in ("Authentication", "X-API-Key: icrm_", "Rotation", "RateLimit-Remaining"):
        assert needed in intro, needed
    tags = page.locator(".opblock-tag-section h3").all_inner_texts()
    for tag in ("Contacts", "Leads", "Opportunities", "Your key"):
        assert any(t.startswith(tag) for t in tags), (tag, tags)
    shot(page, "api-docs")

    export = page.locator("#operations-Contacts-v1_contacts_export_retrieve")
    export.locator(".opblock-summary").click()
    body = export.locator(".opblock-body")
    body.wait_for()
    # Swagger UI fills the body after attaching it: wait for the parameters (a loaded machine
    # read it empty).
    body.get_by_text("formula_guard").first.wait_for()
    text = body.inner_text()
    for needed in ("formula_guard", "search", "ordering", "company", "401", "403", "429"):
        assert needed in text, needed
    assert "Key permission" in export.inner_text()
    # Keys are refused in browsers, so the page offers no "Try it out".
    assert export.get_by_role("button", name="Try it out").count() == 0
    export.screenshot(path=str(SCREENSHOTS / "api-docs-export-operation.png"))


def test_the_docs_page_talks_to_no_host_but_ours(
    chromium_page: Any, live_server: Any, shot: Any
) -> None:
    """Swagger UI sends the schema's URL to validator.swagger.io (an image badge) unless
    ``validatorUrl`` is null; it skips that only for localhost, so the page is served here under
    a public-looking name, each request answered by the live server."""
    page = chromium_page
    ours = "https://crm.example.com"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    def serve(route: Any) -> None:
        if route.request.url.startswith(ours + "/"):
            path = route.request.url[len(ours) :]
            route.fulfill(response=route.fetch(url=live_server.url + path))
        else:
            route.abort()

    page.route("**/*", serve)
    page.goto(ours + "/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    page.locator(".opblock-tag-section").first.wait_for()
    page.wait_for_load_state("networkidle")
    foreign = [url for url in requested if not url.startswith(ours + "/")]
    assert foreign == [], foreign
    assert page.locator(".swagger-ui img[src*='validator']").count() == 0
    assert "Intellicon CRM API" in page.locator(".swagger-ui .info .title").inner_text()
    shot(page, "api-docs-no-foreign-requests")
