"""The Usage tab's plots on a first visit: plotly's first run (a long task) waits for the cards,
each of the twelve plots is drawn once, and without the invisible bars of what did not happen."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, chat, failing, open_usage, records
from tests.helpers import ServerProcess

pytestmark = pytest.mark.browser
MODEL = "firstvisit-model"


@pytest.fixture(scope="module")
def traffic(server: ServerProcess, client: openai.OpenAI) -> None:
    for i in range(4):
        chat(client, MODEL, "word " * (i + 1), max_tokens=6 + i, stream=i % 2 == 0)
    failing(client, MODEL)
    records(server, MODEL, 5)


# Each plot's margins as drawn (plotly's _fullLayout._size) against those its layout asked for.
# When axis labels need more room than asked (automargin), plotly draws the whole plot again with
# the grown margins: that second draw doubled the cost of every plot on a cold visit.
MARGINS = """
() => [...document.querySelectorAll('.usage .js-plotly-plot')].map((el) => {
  const fl = el._fullLayout;
  return { plot: el.dataset.chart || el.dataset.insight,
           grown: ['l', 'r', 't', 'b'].filter((side) => Math.abs(fl._size[side] - fl.margin[side]) > 1) };
})
"""


@pytest.mark.parametrize("width", [1440, 390])
def test_every_plot_is_drawn_once_with_the_margins_it_asked_for(page: Page, width: int, traffic: None) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
    open_usage(page, MODEL, "?insights=1")
    expect(page.locator(".usage .js-plotly-plot .main-svg >> nth=0")).to_be_visible()
    expect(page.locator(".usage .js-plotly-plot")).to_have_count(12)  # 4 charts, 8 insight panels
    page.wait_for_function("() => document.querySelectorAll('.usage .js-plotly-plot .main-svg').length >= 12")
    drawn = page.evaluate(MARGINS)
    assert len(drawn) == 12
    assert [d for d in drawn if d["grown"]] == []


# The date panels' layouts as the page built them (the speed panel's, insights.js; the cost panel's,
# panels.js), laid out again for windows ending at every quarter hour of a day: where the last tick
# lands, and how far its label overhangs the plot's right end, depends on the hour. With automargin
# on every side the right margin grew at some of them (8 to 14-16 px, 24 h and 7 d windows, either
# width) and plotly drew the plot twice; limited to the bottom, with the right margin it had, the
# last label was hidden instead (it would overflow the div) at a third of the hours of a 1 h window.
# The requests chart (charts.js) too: its x axis has no automargin, and with r 8 its last label
# ("00:00", "Dec 7") was hidden at some hours of the 1 h, 24 h and 7 d windows; its tick format follows the window
# as charts.js picks it (buckets under an hour, or a day at most: the time). Traces left out: the
# margins are the axes' alone.
HOURS = """
async () => {
  const faults = [];
  const iso = (t) => new Date(t).toISOString().replace('T', ' ').slice(0, 19);
  for (const name of ['speed', 'costs', 'requests']) {
    const el = document.querySelector(`.usage .plot[data-insight="${name}"], .usage .plot[data-chart="${name}"]`);
    const div = document.createElement('div');
    div.style.width = `${el.clientWidth}px`;
    document.body.append(div);
    for (const hours of [1, 24, 168, 720]) {
      for (let minutes = 0; minutes < 1440; minutes += 15) {
        const end = Date.parse('2026-12-07T00:00:00Z') + minutes * 60000;
        const layout = structuredClone(el.layout);
        layout.xaxis.range = [iso(end - hours * 3600000), iso(end)];
        if (el.dataset.chart) layout.xaxis.tickformat = hours <= 24 ? '%H:%M' : '%b %-d';
        await Plotly.react(div, [], layout, { displayModeBar: false });
        const fl = div._fullLayout;
        const sides = ['l', 'r', 't', 'b'].filter((side) => Math.abs(fl._size[side] - fl.margin[side]) > 1);
        if (sides.length) faults.push(`${name} ${hours} h to ${iso(end)}: ${sides}`);
        const hidden = [...div.querySelectorAll('.xtick text')].filter((t) => getComputedStyle(t).display === 'none');
        if (hidden.length) faults.push(`${name} ${hours} h to ${iso(end)}: ${hidden[0].textContent} hidden`);
      }
    }
    Plotly.purge(div);
    div.remove();
  }
  return faults;
}
"""


@pytest.mark.parametrize("width", [1440, 390])
def test_no_date_plot_grows_a_margin_or_hides_a_label_at_any_hour(page: Page, width: int, traffic: None) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
    open_usage(page, MODEL, "?insights=1")
    page.wait_for_function("() => document.querySelectorAll('.usage .js-plotly-plot .main-svg').length >= 12")
    assert page.evaluate(HOURS) == []


# The page's own clock: when the four cards showed figures, and when plotly's bundle had run (it
# sets window.Plotly at the end of its first run). The cards' API call is held back 1.5 s in the
# page, so every other panel's data is in first.
STAMPS = """
(() => {
  let plotly;
  Object.defineProperty(window, 'Plotly', { configurable: true, get: () => plotly,
    set: (v) => { plotly = v; window.__plotlyAt = performance.now(); } });
  const fetch0 = window.fetch;
  window.fetch = async (url, ...rest) => {
    const res = await fetch0(url, ...rest);
    if (/\\/usage\\?/.test(String(url))) await new Promise((r) => setTimeout(r, 1500));
    return res;
  };
  new MutationObserver(() => {
    const values = document.querySelectorAll('.cards [data-role=value]');
    if (!window.__cardsAt && values.length === 4 && !document.querySelector('.cards .skeleton')
        && [...values].every((v) => v.textContent.trim())) window.__cardsAt = performance.now();
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


def test_plotly_runs_after_the_cards_even_when_the_panels_answer_first(page: Page, traffic: None) -> None:
    page.add_init_script(STAMPS)
    open_usage(page, MODEL, "?insights=1")
    page.wait_for_function("() => document.querySelectorAll('.usage .js-plotly-plot .main-svg').length >= 12")
    cards, plotly = page.evaluate("[window.__cardsAt, window.__plotlyAt]")
    assert cards >= 1500  # the hold-back worked
    assert plotly > cards


def test_a_stacked_panel_leaves_out_what_did_not_happen(page: Page, server: ServerProcess, traffic: None) -> None:
    errors = api(server, f"/api/deployments/{MODEL}/usage/errors?window=7d")
    happened = [c for c in errors["classes"] if errors["totals"][c]]
    assert happened == ["client"] and len(errors["classes"]) == 6  # the one failure: a 400
    open_usage(page, MODEL, "?insights=1")
    plot = page.locator('.plot[data-insight="errors"]')
    expect(plot.locator(".main-svg").first).to_be_visible()
    expect(plot.locator("g.trace")).to_have_count(1)  # not six, five of them zero-height bars
    # No retries at all: the axes and grid, no bars. The table keeps every class's column.
    expect(page.locator('.plot[data-insight="retries"] .main-svg').first).to_be_visible()
    expect(page.locator('.plot[data-insight="retries"] g.trace')).to_have_count(0)
    expect(page.locator('[data-panel="errors"] tfoot td')).to_have_count(6)
