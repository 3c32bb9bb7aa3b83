"""The Models page: one card per deployment, its last 24 hours, and the deploy form."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DEPLOYMENTS
from tests.browser.support import api, chat, failing, fmt, records, shot
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser


def test_served_by_the_same_process_with_a_strict_csp(page: Page, server: ServerProcess) -> None:
    for path in ("/", "/models/cards-model", "/models/cards-model/requests/abc"):
        res = page.request.get(path)
        assert res.status == 200 and res.headers["content-type"].startswith("text/html"), path
        csp = res.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "default-src 'self'" in csp and "unsafe-eval" not in csp
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    js = page.request.get("/static/vendor/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "plotly.js" in js.text()[:200]
    for asset in ("/static/js/main.js", "/static/css/app.css"):
        assert page.request.get(asset).status == 200, asset


def test_one_card_per_deployment_with_its_last_day(page: Page, server: ServerProcess, client: openai.OpenAI) -> None:
    for i in range(3):
        chat(client, "cards-model", f"hello {i}", max_tokens=5)
    failing(client, "cards-model")
    records(server, "cards-model", 4)
    page.goto("/")
    expect(page.locator(".model-card[data-name]")).to_have_count(len(DEPLOYMENTS))
    expected = {d["name"]: d for d in api(server, "/api/deployments")["data"]}
    for name, dep in expected.items():
        card = page.locator(f'.model-card[data-name="{name}"]')
        expect(card.locator(".model-name")).to_have_text(name)
        expect(card.locator(".model-card-meta")).to_contain_text(dep["provider"])
        expect(card.locator(".model-card-meta")).to_contain_text(dep["model"])
        expect(card.locator(".model-card-base")).to_have_text(dep["api_base"])
        expect(card.locator(".reach")).to_have_text("Reachable")
        day = dep["last_24h"]
        expect(card.locator('[data-stat="requests"] dd')).to_have_text(fmt(page, "int", day["requests"]))
        expect(card.locator('[data-stat="error-rate"] dd')).to_have_text(fmt(page, "pct", day["error_rate"]))
        expect(card.locator('[data-stat="spend"] dd')).to_have_text(fmt(page, "usd", day["spend"]))
    assert expected["cards-model"]["last_24h"]["requests"] >= 4
    shot(page, "models")


def test_a_click_on_the_card_opens_it(page: Page) -> None:
    page.goto("/")
    card = page.locator('.model-card[data-name="filters-model"]')
    card.scroll_into_view_if_needed()  # below the totals strip: maybe under the fold
    box = card.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] - 30, box["y"] + box["height"] - 20)  # not on the name
    expect(page).to_have_url(re.compile(r"/models/filters-model$"))
    expect(page.locator("h1")).to_have_text("filters-model")
    expect(page.locator(".model-meta")).to_contain_text("fake-model")
    expect(page.locator(".model-meta")).not_to_contain_text("null")  # no upstreams: nothing, not "null"
    page.go_back()
    page.locator('.model-card[data-name="empty-model"] .model-name').click()
    expect(page).to_have_url(re.compile(r"/models/empty-model$"))
    page.go_back()
    page.locator('.model-card[data-name="team/slash-model"] .model-name').click()
    expect(page).to_have_url(re.compile(r"/models/team%2Fslash-model$"))
    expect(page.locator("h1")).to_have_text("team/slash-model")
    expect(page.locator(".empty-state")).to_contain_text('"model":"team/slash-model"')


def test_deploy_form_adds_a_card_and_shows_api_errors(
    page: Page, server: ServerProcess, fake_upstream: FakeUpstream
) -> None:
    page.goto("/")
    expect(page.locator(".model-card[data-name]")).to_have_count(len(DEPLOYMENTS))
    page.get_by_role("button", name="Deploy a model").click()
    form = page.locator("form.deploy-form")
    form.locator("input[name=name]").fill("deployed-at-runtime")
    form.locator("input[name=api_base]").fill(fake_upstream.base_url)
    form.locator("input[name=model]").fill("fake-model")
    form.locator("input[name=provider]").fill("openai")
    form.locator("input[name=price_input]").fill("0.5")
    form.locator("input[name=price_output]").fill("1.5")
    shot(page, "models-deploy-form")
    form.get_by_role("button", name="Deploy").click()
    new = page.locator('.model-card[data-name="deployed-at-runtime"]')
    expect(new).to_be_visible()
    expect(new.locator(".model-card-base")).to_have_text(fake_upstream.base_url)
    expect(form).to_be_hidden()
    dep = api(server, "/api/deployments/deployed-at-runtime")
    assert dep["source"] == "api" and dep["price"] == {"input": 0.5, "output": 1.5}

    # The same name again: the API's own message, as is.
    page.get_by_role("button", name="Deploy a model").click()
    form.locator("input[name=name]").fill("deployed-at-runtime")
    form.locator("input[name=api_base]").fill(fake_upstream.base_url)
    form.get_by_role("button", name="Deploy").click()
    alert = form.get_by_role("alert")
    expect(alert).to_have_text("a deployment named 'deployed-at-runtime' already exists")
    # A bad API base: a 400 and its message.
    form.locator("input[name=name]").fill("bad-base")
    form.locator("input[name=api_base]").fill("ftp://nowhere")
    form.get_by_role("button", name="Deploy").click()
    expect(alert).to_contain_text("'api_base' must be an http(s) URL")
    # It survives a reload: it is stored by the server.
    page.reload()
    expect(page.locator('.model-card[data-name="deployed-at-runtime"]')).to_be_visible()
    assert server.api("DELETE", "/api/deployments/deployed-at-runtime")[0] == 204


def test_plotly_runs_while_the_list_is_read_and_not_once_it_is_left(page: Page) -> None:
    """The Models page runs the charts' library in an idle moment once it has shown its data and
    stayed 1.5 s (charts.js warmPlotly), so the first Usage tab opened from it skips plotly's first
    run (a long task); a page left sooner does not start it."""
    page.goto("/")
    expect(page.locator(".model-card[data-name]")).to_have_count(len(DEPLOYMENTS))
    assert page.evaluate("typeof window.Plotly") == "undefined"  # not at once: the page's own work first
    page.wait_for_function("() => window.Plotly && window.Plotly.newPlot", timeout=15_000)
    page.locator('.model-card[data-name="cards-model"] .model-name').click()
    expect(page.locator('.charts [data-chart="requests"] .main-svg').first).to_be_visible()
    scripts = page.evaluate("[...document.scripts].filter((s) => s.src.includes('plotly')).length")
    assert scripts == 1  # the library the list ran is the one the charts use

    page.goto("/")
    expect(page.locator(".model-card[data-name]")).to_have_count(len(DEPLOYMENTS))
    page.locator(".topnav a[data-nav=alerts]").click()  # left before the 1.5 s
    page.wait_for_timeout(3_000)
    assert page.evaluate("typeof window.Plotly") == "undefined"
