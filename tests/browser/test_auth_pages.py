"""Issue #18 item 16 in the browser: /docs works under its Content-Security-Policy (no violation, the
operations render), and /static/index.html is the page with the same policy as /."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.helpers import ServerProcess


def test_docs_runs_under_its_csp(page: Page, server: ServerProcess) -> None:
    with page.expect_response("**/openapi.json") as spec:
        res = page.goto("/docs")
    assert res is not None and res.status == 200
    policy = res.headers["content-security-policy"]
    scripts = policy.split("script-src")[1].split(";")[0]
    assert scripts.startswith(" 'self'") and "unsafe" not in scripts, policy
    # Swagger UI started from our own script (the page has no inline script) and fetched the document.
    assert spec.value.status == 200
    expect(page.locator("#swagger-ui .swagger-ui").first).to_be_attached(timeout=20_000)
    # (the page fixture fails the test on any CSP violation or script error)


def test_static_index_html_has_the_page_policy(page: Page, server: ServerProcess) -> None:
    res = page.goto("/static/index.html")
    root = page.request.get("/")
    assert res is not None and res.status == 200
    assert res.headers["content-security-policy"] == root.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in res.headers["content-security-policy"]
