"""/docs: Swagger UI renders FastAPI's OpenAPI 3.1 document, offline, with no inline script."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser


def test_docs_page_lists_the_operations(page: Page, server: ServerProcess) -> None:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    response = page.goto("/docs")
    assert response is not None and response.status == 200
    # Everything comes from this server: no CDN, no online validator.
    ops = page.locator(".opblock-summary")
    expect(ops.first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    paths = ops.locator(".opblock-summary-path").all_text_contents()
    assert any(p.replace("\u200b", "") == "/api/deployments" for p in paths), paths
    assert ops.count() >= 8, paths
    # The document is OpenAPI 3.1 (what FastAPI writes), and the page says so.
    expect(page.locator(".info .version-stamp, .info .title small").last).to_contain_text("3.1")
    page.locator(".opblock-summary").first.click()  # an operation opens (the UI is live, not a stub)
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert all(u.startswith(server.url) or u.startswith("data:") for u in urls), urls
    # No inline script: the CSP (script-src 'self') holds; a violation would fail the test (conftest).
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.locator("script:not([src])").count() == 0
    shot(page, "docs")
