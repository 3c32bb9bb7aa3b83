"""The Models page as a fleet overview, and the compare view: at 1440 px and on a 390 px phone, in the
light and the dark colour scheme. The numbers shown are the fleet API's; the totals equal the cards'
sums; sorting works from the keyboard; the compare view shows both sides; no "null" anywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DEPLOYMENTS
from tests.browser.support import TZ, api, chat, failing, fmt, records, shot
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser

LAYOUTS = [pytest.param(1440, "light", id="desktop-light"), pytest.param(390, "dark", id="phone-dark")]
SORTED_BY = {"requests": "requests", "spend": "spend", "error_rate": "error-rate"}


@pytest.fixture(scope="module")
def traffic(server: ServerProcess, client: openai.OpenAI) -> None:
    """Requests on two deployments (one failed), so totals, shares and error rates are not trivial."""
    for i in range(3):
        chat(client, "fleet-model", f"fleet {i}", max_tokens=8)
    failing(client, "fleet-model")
    chat(client, "cards-model", "fleet other", max_tokens=4)
    records(server, "fleet-model", 4)


def layout(page: Page, width: int, scheme: str) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
    page.emulate_media(color_scheme=scheme)


def no_bad_words(page: Page) -> None:
    text = page.locator("#app").inner_text()
    assert not re.search(r"\b(null|undefined|NaN)\b", text), text


def fits(page: Page, width: int) -> None:
    overflow = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert overflow <= width, f"the page is {overflow} px wide at {width} px"


def values(page: Page, selector: str) -> list[Any]:
    """The raw numbers (data-value) of the matching elements, top to bottom; None for an empty one."""
    raw = page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.value)")
    return [None if v == "" else float(v) for v in raw]


def open_models(page: Page, query: str = "") -> None:
    page.goto(f"/{query}")
    expect(page.locator(".model-card[data-name]")).to_have_count(len(DEPLOYMENTS))
    page.wait_for_function("() => !document.querySelector('.fleet .skeleton')")


def contrast(page: Page, selector: str) -> float:
    """WCAG contrast ratio of an element's text against the first opaque background behind it."""
    return float(
        page.eval_on_selector(
            selector,
            """el => {
              const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
              const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
                return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
              let bg = [255, 255, 255];
              for (let n = el; n; n = n.parentElement) {
                const c = rgb(getComputedStyle(n).backgroundColor);
                if (c.length === 3 || c[3] > 0) { bg = c.slice(0, 3); break; }
              }
              const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(bg)].sort((x, y) => y - x);
              return (a + 0.05) / (b + 0.05);
            }""",
        )
    )


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_totals_equal_the_cards_sums(page: Page, server: ServerProcess, traffic: None, width: int, scheme: str) -> None:
    layout(page, width, scheme)
    open_models(page)
    fleet = api(server, f"/api/fleet/usage?window=24h&tz={quote(TZ)}")
    totals = fleet["totals"]
    assert totals["requests"] >= 5 and totals["failed"] >= 1
    strip = {k: values(page, f'.fleet [data-total="{k}"] [data-role="value"]')[0] for k in ("requests", "spend")}
    error_rate = values(page, '.fleet [data-total="error-rate"] [data-role="value"]')[0]
    # What the strip says is the API's, formatted as the page formats
    for key, figure, f in (
        ("requests", "requests", "int"),
        ("tokens", "total_tokens", "tokens"),
        ("spend", "spend", "usd"),
        ("error-rate", "error_rate", "pct"),
    ):
        expect(page.locator(f'.fleet [data-total="{key}"] [data-role="value"]')).to_have_text(
            fmt(page, f, totals[figure])
        )
    # ...and equals the cards' sums (requests exactly, money in picodollars, error rate weighted)
    requests = values(page, '.model-card [data-stat="requests"]')
    spends = values(page, '.model-card [data-stat="spend"]')
    rates = values(page, '.model-card [data-stat="error-rate"]')
    assert strip["requests"] == sum(requests) > 0
    assert round(strip["spend"] * 1e12) == sum(round(s * 1e12) for s in spends)
    failed = sum(round(n * r) for n, r in zip(requests, rates, strict=True) if r is not None)
    assert error_rate == pytest.approx(failed / sum(requests), abs=1e-12)
    shares = [s for s in values(page, '.model-card [data-stat="share"]') if s is not None]
    assert sum(shares) == pytest.approx(1.0)
    card = page.locator('.model-card[data-name="fleet-model"]')
    mine = next(d for d in fleet["deployments"] if d["deployment"] == "fleet-model")
    expect(card.locator('[data-stat="share"] .share-value')).to_have_text(fmt(page, "pct", mine["spend_share"]))
    expect(card.locator('[data-stat="requests"] dd')).to_have_text(fmt(page, "int", mine["requests"]))
    assert int(card.locator(".model-card-spark svg").get_attribute("data-points") or 0) >= 1
    # The window is the viewer's time, labelled with the zone
    expect(page.locator(".fleet [data-role=period]")).to_contain_text(f"({TZ})")
    # Another window: the numbers follow, and the URL keeps it
    page.select_option("#window", "7d")
    expect(page).to_have_url(re.compile(r"\?window=7d$"))
    week = api(server, f"/api/fleet/usage?window=7d&tz={quote(TZ)}")["totals"]
    expect(page.locator('.fleet [data-total="requests"] [data-role="value"]')).to_have_text(
        fmt(page, "int", week["requests"])
    )
    expect(card.locator('[data-stat="requests"] dt')).to_have_text("Requests · 7d")
    for selector in ('.fleet [data-total="requests"] dt', ".fleet-range", ".share-label", ".model-card-stats dt"):
        assert contrast(page, selector) >= 4.5, (selector, scheme)
    fits(page, width)
    no_bad_words(page)
    shot(page, f"models-fleet-{width}-{scheme}", full_page=True)


def card_order(page: Page) -> list[str]:
    return list(page.eval_on_selector_all(".model-card[data-name]", "els => els.map(e => e.dataset.name)"))


def tab_to(page: Page, selector: str, limit: int = 40, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until ``selector`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_sorting_works_from_the_keyboard(page: Page, traffic: None, width: int, scheme: str) -> None:
    layout(page, width, scheme)
    open_models(page)
    names = card_order(page)
    assert names == sorted(names)  # by name, A to Z, by default
    page.locator("#window").focus()
    tab_to(page, '.sort-btn[data-sort="requests"]')
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # a visible focus
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"sort=requests&dir=desc"))
    requests = values(page, '.model-card [data-stat="requests"]')
    assert requests == sorted(requests, reverse=True) and requests[0] > 0
    page.keyboard.press("Enter")  # again: the other way
    expect(page).to_have_url(re.compile(r"sort=requests&dir=asc"))
    requests = values(page, '.model-card [data-stat="requests"]')
    assert requests == sorted(requests) and requests[-1] > 0
    expect(page.locator(".sort [role=status]")).to_have_text("Sorted by requests, lowest first")
    tab_to(page, '.sort-btn[data-sort="error_rate"]')
    page.keyboard.press("Space")
    rates = values(page, '.model-card [data-stat="error-rate"]')
    known = [r for r in rates if r is not None]
    assert known == sorted(known, reverse=True) and known[0] > 0
    assert rates[: len(known)] == known  # models without requests (no error rate) last
    tab_to(page, '.sort-btn[data-sort="spend"]', key="Shift+Tab")
    page.keyboard.press("Enter")
    spends = values(page, '.model-card [data-stat="spend"]')
    assert spends == sorted(spends, reverse=True) and spends[0] > 0
    expect(page.locator('.sort-btn[data-sort="spend"]')).to_have_attribute("aria-pressed", "true")
    page.reload()  # the order is in the URL
    page.wait_for_function("() => !document.querySelector('.fleet .skeleton')")
    assert values(page, '.model-card [data-stat="spend"]') == spends
    tab_to(page, '.sort-btn[data-sort="name"]')
    page.keyboard.press("Enter")
    assert card_order(page) == sorted(names)
    no_bad_words(page)


T = "els => els.map(e => e.getAttribute('datetime'))"


def instant(iso: str | None) -> float:
    assert iso
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def side_value(page: Page, side: str, card: str) -> str:
    return page.locator(f'.compare-side[data-side="{side}"] [data-card="{card}"] [data-role="value"]').inner_text()


def side_times(page: Page, side: str) -> tuple[str, str]:
    """A side's period as the page shows it: its two <time datetime> instants (UTC, with a Z)."""
    loc = page.locator(f'.compare-side[data-side="{side}"] [data-role=period] time')
    expect(loc).to_have_count(2)
    start, end = loc.evaluate_all(T)
    return start, end


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_the_compare_view_shows_both(page: Page, server: ServerProcess, traffic: None, width: int, scheme: str) -> None:
    layout(page, width, scheme)
    open_models(page, "?sort=spend&dir=desc")
    first_two = card_order(page)[:2]
    page.locator("#compare-open").click()
    expect(page).to_have_url(re.compile(r"/compare\?"))
    expect(page.locator("h1")).to_have_text("Compare")
    expect(page.locator("#compare-a")).to_have_value(first_two[0])  # once the deployments are listed
    expect(page.locator("#compare-b")).to_have_value(first_two[1])
    page.goto("/compare?a=fleet-model&b=cards-model&window=24h")
    for side, name in (("a", "fleet-model"), ("b", "cards-model")):
        root = page.locator(f'.compare-side[data-side="{side}"]')
        expect(root.locator(".compare-name a")).to_have_text(name)
        expect(root.locator(".metric")).to_have_count(4)
        want = api(server, f"/api/deployments/{name}/usage?window=24h&tz={quote(TZ)}")
        expect(root.locator('[data-card="requests"] [data-role="value"]')).to_have_text(
            fmt(page, "int", want["requests"])
        )
        expect(root.locator('[data-card="spend"] [data-role="value"]')).to_have_text(fmt(page, "usd", want["spend"]))
        expect(root.locator(".js-plotly-plot")).to_have_count(2, timeout=20_000)  # requests, latency
        expect(root.locator('[data-chart="requests"]')).to_be_visible()
        expect(root.locator('[data-chart="latency"]')).to_be_visible()
        expect(root.locator("[data-role=period]")).to_contain_text(f"({TZ})")
    # one scale on both sides (taller means more): the larger side's top
    for chart in ("requests", "latency"):
        page.wait_for_function(
            """c => { const r = [...document.querySelectorAll(`.compare-side [data-chart=${c}]`)]
                .map(p => p.layout && JSON.stringify(p.layout.yaxis.range));
              return r.length === 2 && r[0] && r[0] === r[1]; }""",
            arg=chart,
        )
    top = page.eval_on_selector('[data-side="a"] [data-chart=requests]', "p => p.layout.yaxis.range[1]")
    most = max(
        max(
            b["requests"]
            for b in api(server, f"/api/deployments/{n}/usage/timeseries?window=24h&tz={quote(TZ)}")["buckets"]
        )
        for n in ("fleet-model", "cards-model")
    )
    assert top >= most >= 4
    a = page.locator('.compare-side[data-side="a"]').bounding_box()
    b = page.locator('.compare-side[data-side="b"]').bounding_box()
    assert a is not None and b is not None
    if width > 760:
        assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 1  # side by side
    else:
        assert b["y"] >= a["y"] + a["height"] - 1  # one above the other on a phone
    fits(page, width)
    no_bad_words(page)
    shot(page, f"compare-{width}-{scheme}", full_page=True)

    # One model, its window beside the one before (picked with the form, as a user does)
    page.select_option("#compare-b", "fleet-model")
    page.select_option("#compare-b-period", "previous")
    expect(page).to_have_url(re.compile(r"a=fleet-model&b=fleet-model&b_period=previous"))
    before = api(server, f"/api/deployments/fleet-model/usage?window=24h&tz={quote(TZ)}")["previous"]
    side_b = page.locator('.compare-side[data-side="b"]')
    expect(side_b.locator(".compare-name")).to_contain_text("previous window")
    expect(side_b.locator('[data-card="requests"] [data-role="value"]')).to_have_text(
        fmt(page, "int", before["requests"])
    )
    # its period: the 24 hours that end where side a's start (the named window moves with the clock)
    expect(side_b.locator("[data-role=period] time").first).to_have_attribute("datetime", re.compile(r"Z$"))
    b_start, b_end = (instant(t) for t in side_times(page, "b"))
    a_period = page.locator('.compare-side[data-side="a"] [data-role=period] time')
    a_start = instant(a_period.first.get_attribute("datetime"))
    assert abs(b_end - b_start - 86400) < 0.001 and abs(b_end - a_start) < 60
    assert abs(b_start - instant(before["start"])) < 60
    expect(side_b.locator(".js-plotly-plot")).to_have_count(2, timeout=20_000)
    no_bad_words(page)


def test_the_fleet_api_is_documented_and_answers_bad_windows_with_400(server: ServerProcess) -> None:
    doc = api(server, "/openapi.json")["paths"]["/api/fleet/usage"]["get"]
    assert {p["name"] for p in doc["parameters"]} == {"window", "start", "end", "tz"}
    assert "equal the sums of `deployments` exactly" in doc["description"]
    status, body = server.api("GET", "/api/fleet/usage?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z")
    assert status == 400 and body["error"]["param"] == "end"
    status, body = server.api("GET", "/api/fleet/usage?tz=Mars/Olympus")
    assert status == 400 and body["error"]["param"] == "tz"
    status, body = server.api("GET", "/api/fleet/usage?window=1h")
    assert status == 200
    served = [d["name"] for d in api(server, "/api/deployments")["data"]]
    assert [d["deployment"] for d in body["deployments"]] == served


def b_period(page: Page) -> tuple[float, float]:
    start, end = side_times(page, "b")  # once loaded: a side shows no period while it loads
    return instant(start), instant(end)


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_the_compare_view_takes_other_periods(
    page: Page, server: ServerProcess, traffic: None, width: int, scheme: str
) -> None:
    layout(page, width, scheme)
    page.goto("/compare?a=fleet-model&b=fleet-model&window=24h")
    side_a = page.locator('.compare-side[data-side="a"]')
    side_b = page.locator('.compare-side[data-side="b"]')
    expect(side_a.locator(".metric")).to_have_count(4)

    # The same window a week earlier: side a's bounds, 7 calendar days back in the viewer's zone
    page.select_option("#compare-b-period", "week")
    expect(page).to_have_url(re.compile(r"b_period=week"))
    expect(side_b.locator(".compare-name")).to_contain_text("1 week earlier")
    expect(side_b.locator("[data-role=period] time")).to_have_count(2)
    a_start, a_end = (instant(t) for t in side_times(page, "a"))
    b_start, b_end = b_period(page)
    assert abs((a_start - b_start) - 7 * 86400) <= 3600 and abs((a_end - b_end) - 7 * 86400) <= 3600
    q = f"start={quote(side_b.locator('[data-role=period] time').first.get_attribute('datetime') or '')}"
    q += f"&end={quote(side_b.locator('[data-role=period] time').last.get_attribute('datetime') or '')}"
    week = api(server, f"/api/deployments/fleet-model/usage?{q}&tz={quote(TZ)}")
    expect(side_b.locator('[data-card="requests"] [data-role="value"]')).to_have_text(
        fmt(page, "int", week["requests"])
    )

    # A chosen range around the traffic, typed in the viewer's time (Europe/Paris)
    page.select_option("#compare-b-period", "custom")
    expect(page.locator("#compare-b-range")).to_be_visible()
    zone = ZoneInfo(TZ)
    start = datetime.now(zone) - timedelta(hours=2)
    end = datetime.now(zone) + timedelta(hours=1)
    page.fill("#compare-b-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#compare-b-end", end.strftime("%Y-%m-%dT%H:%M"))
    page.locator("#compare-b-range button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"b_period=custom&b_start=[^&]+Z&b_end=[^&]+Z"))
    expect(side_b.locator(".compare-name")).to_contain_text("chosen range")
    b_start, b_end = b_period(page)
    assert abs(b_start - start.replace(second=0, microsecond=0).timestamp()) < 1
    assert abs(b_end - end.replace(second=0, microsecond=0).timestamp()) < 1
    # the cards equal the request log's own rows for that range (the raw records, not the rollups)
    iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    rows = api(
        server, f"/api/deployments/fleet-model/requests?start={quote(iso(b_start))}&end={quote(iso(b_end))}&limit=200"
    )
    n = len(rows["data"])
    assert n >= 4
    expect(side_b.locator('[data-card="requests"] [data-role="value"]')).to_have_text(fmt(page, "int", n))
    expect(side_b.locator(".js-plotly-plot")).to_have_count(2, timeout=20_000)
    fits(page, width)
    no_bad_words(page)
    shot(page, f"compare-range-{width}-{scheme}", full_page=True)

    # The link round-trips: a reload shows the same range and figures
    url = page.url
    page.reload()
    expect(page.locator("#compare-b-period")).to_have_value("custom")
    expect(page.locator("#compare-b-start")).to_have_value(start.strftime("%Y-%m-%dT%H:%M"))
    expect(side_b.locator('[data-card="requests"] [data-role="value"]')).to_have_text(fmt(page, "int", n))
    assert page.url == url

    # A range that ends before it starts: a message, and the URL is left as it was
    page.fill("#compare-b-end", (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.locator("#compare-b-range button[type=submit]").click()
    expect(page.locator(".page-head ~ .callout-error, #app > .callout-error").first).to_contain_text(
        "must end after it starts"
    )
    assert page.url == url

    # A link with a range that is not one: the message, and side a still shown
    page.goto("/compare?a=fleet-model&b=fleet-model&window=24h&b_period=custom&b_start=soon&b_end=later")
    expect(side_b.locator(".callout-error")).to_contain_text("needs a start and an end")
    expect(side_a.locator(".metric")).to_have_count(4)
    expect(side_a.locator('[data-card="requests"] [data-role="value"]')).not_to_have_text("")
    no_bad_words(page)
    fits(page, width)


def expect_figures(page: Page, server: ServerProcess, side: str, start: str, end: str) -> dict[str, Any]:
    """The side's cards show the usage API's figures for exactly [start, end)."""
    want = api(server, f"/api/deployments/fleet-model/usage?start={quote(start)}&end={quote(end)}&tz={quote(TZ)}")
    root = page.locator(f'.compare-side[data-side="{side}"]')
    expect(root.locator('[data-card="requests"] [data-role="value"]')).to_have_text(fmt(page, "int", want["requests"]))
    expect(root.locator('[data-card="spend"] [data-role="value"]')).to_have_text(fmt(page, "usd", want["spend"]))
    return dict(want)


def utc_iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_the_first_side_takes_other_periods_too(
    page: Page, server: ServerProcess, traffic: None, width: int, scheme: str
) -> None:
    layout(page, width, scheme)
    # The page's window: the next 3 hours (nothing in it yet); the window before it holds the traffic
    now = datetime.now(UTC).replace(microsecond=0)
    w_start, w_end = now + timedelta(minutes=5), now + timedelta(hours=3, minutes=5)
    window = f"start={quote(utc_iso(w_start))}&end={quote(utc_iso(w_end))}"
    page.goto(f"/compare?a=fleet-model&b=fleet-model&{window}")
    side_a = page.locator('.compare-side[data-side="a"]')
    side_b = page.locator('.compare-side[data-side="b"]')
    expect(side_a.locator(".metric")).to_have_count(4)
    expect(page.locator("#compare-a-period")).to_have_value("current")
    assert expect_figures(page, server, "a", *side_times(page, "a"))["requests"] == 0

    # A preset, picked with the form: side a shows the window before, side b stays on the window
    page.get_by_label("Period of the first model").select_option("previous")
    expect(page).to_have_url(re.compile(r"a=fleet-model&b=fleet-model&a_period=previous&start="))
    expect(side_a.locator(".compare-name")).to_contain_text("previous window")
    expect(side_b.locator(".compare-name .pill")).to_have_count(0)
    a_start, a_end = side_times(page, "a")
    b_start, b_end = side_times(page, "b")
    assert instant(b_start) == w_start.timestamp() and instant(b_end) == w_end.timestamp()
    assert instant(a_end) == instant(b_start) and instant(a_start) == (w_start - (w_end - w_start)).timestamp()
    before = expect_figures(page, server, "a", a_start, a_end)
    assert before["requests"] >= 4  # the traffic: the figures are not those of an empty period
    assert expect_figures(page, server, "b", b_start, b_end)["requests"] == 0
    expect(side_a.locator(".js-plotly-plot")).to_have_count(2, timeout=20_000)

    # Side b's own period is kept beside it: both in the URL
    page.select_option("#compare-b-period", "week")
    expect(page).to_have_url(re.compile(r"a_period=previous&b_period=week&start="))
    expect(side_b.locator(".compare-name")).to_contain_text("1 week earlier")
    expect(side_a.locator(".compare-name")).to_contain_text("previous window")

    # A chosen range around the traffic, typed in the viewer's time (Europe/Paris) and applied
    # from the keyboard (Enter in the second input submits its form)
    page.get_by_label("Period of the first model").select_option("custom")
    expect(page.locator("#compare-a-range")).to_be_visible()
    expect(page.locator("#compare-a-start")).to_be_focused()
    zone = ZoneInfo(TZ)
    start = (datetime.now(zone) - timedelta(hours=3)).replace(second=0, microsecond=0)
    end = (datetime.now(zone) + timedelta(hours=1)).replace(second=0, microsecond=0)
    page.get_by_label(f"First period from ({TZ})").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label(f"First period to ({TZ})").fill(end.strftime("%Y-%m-%dT%H:%M"))
    page.locator("#compare-a-end").press("Enter")
    expect(page).to_have_url(re.compile(r"a_period=custom&a_start=[^&]+Z&a_end=[^&]+Z&b_period=week&start="))
    expect(side_a.locator(".compare-name")).to_contain_text("chosen range")
    a_start, a_end = side_times(page, "a")
    assert instant(a_start) == start.timestamp() and instant(a_end) == end.timestamp()
    chosen = expect_figures(page, server, "a", a_start, a_end)
    rows = api(server, f"/api/deployments/fleet-model/requests?start={quote(a_start)}&end={quote(a_end)}&limit=200")
    assert chosen["requests"] == len(rows["data"]) >= 4  # the raw records agree with the figures shown
    expect(side_b.locator(".compare-name")).to_contain_text("1 week earlier")  # side b untouched
    expect(side_a.locator(".js-plotly-plot")).to_have_count(2, timeout=20_000)
    fits(page, width)
    no_bad_words(page)
    shot(page, f"compare-a-range-{width}-{scheme}", full_page=True)

    # The link round-trips: a reload (or another viewer) shows the same range and figures
    url = page.url
    page.reload()
    expect(page.locator("#compare-a-period")).to_have_value("custom")
    expect(page.locator("#compare-a-start")).to_have_value(start.strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("#compare-a-end")).to_have_value(end.strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("#compare-b-period")).to_have_value("week")
    expect_figures(page, server, "a", a_start, a_end)
    assert page.url == url

    # Both ranges open at once still fit the phone
    page.select_option("#compare-b-period", "custom")
    expect(page.locator("#compare-b-range")).to_be_visible()
    fits(page, width)
    for sel in ("#compare-a-end", "#compare-b-end", "#compare-a-range button[type=submit]"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (sel, box)

    # A range that ends before it starts: the message, and the URL is left as it was
    page.fill("#compare-a-end", (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.locator("#compare-a-range button[type=submit]").click()
    expect(page.locator("#app > .callout-error, .page-head ~ .callout-error").first).to_contain_text(
        "The first period must end after it starts"
    )
    assert page.url == url

    # A link with a range that is not one: side a says why, side b is still shown
    page.goto(f"/compare?a=fleet-model&b=fleet-model&a_period=custom&a_start=soon&a_end=later&{window}")
    expect(side_a.locator(".callout-error")).to_contain_text("The first period needs a start and an end")
    expect(side_a.locator(".compare-name a")).to_have_text("fleet-model")
    expect(side_a.locator(".cards")).to_be_hidden()
    expect(side_b.locator(".metric")).to_have_count(4)
    expect_figures(page, server, "b", *side_times(page, "b"))
    no_bad_words(page)
    fits(page, width)
