"""The report's and the load page's charts as drawn by plotly in headless Chromium: labels
readable and clear of the axes, titles clear of the plotly toolbar, nothing drawn for nothing.

Each test renders a page for a run that triggers the case, screenshots the chart (kept in
``$EVALKIT_SCREENSHOTS`` when set, for a human to look at) and asserts on the drawn SVG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _browser import ConsoleLog, rect_gap
from _results_factory import conv, run

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# The least room between a bar's label and the category names on its axis: less reads as one
# word ("cross_customer0% (0 of 14)").
MIN_GAP_PX = 6


def _shot(page: Page, selector: str, name: str, tmp_path: Path, *, parent: bool = False) -> Path:
    """Screenshot the element (or its parent, a chart's card) to ``$EVALKIT_SCREENSHOTS`` or tmp_path."""
    folder = Path(os.environ.get("EVALKIT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    element = page.locator(selector)
    (element.locator("xpath=..") if parent else element).screenshot(path=str(path))
    return path


def _draw_report(page: Page, tmp_path: Path, convs: list[Any]) -> None:
    from evalkit.reports.html import render_report

    path = tmp_path / "report.html"
    path.write_text(render_report(run(convs)), encoding="utf-8")
    page.goto(path.as_uri())
    page.wait_for_function("() => document.documentElement.dataset.charts === '1'", timeout=60_000)


def _boxes(page: Page, selector: str) -> list[dict[str, Any]]:
    """Text and on-screen box of every element matching ``selector``."""
    return page.evaluate(
        """sel => Array.from(document.querySelectorAll(sel)).map(e => {
             const r = e.getBoundingClientRect();
             return {text: e.textContent, x: r.x, y: r.y, width: r.width, height: r.height};
           })""",
        selector,
    )


def _label_clear_of_axis(page: Page, chart: str, label: str, category: str) -> None:
    """The bar label ``label`` is drawn, visible, and at least MIN_GAP_PX from every category name."""
    bars = [b for b in _boxes(page, f"{chart} text.bartext") if b["text"] == label]
    assert bars, f"no bar label {label!r} in {chart}: {[b['text'] for b in _boxes(page, f'{chart} text.bartext')]}"
    bar = bars[0]
    assert bar["width"] > 0 and bar["height"] > 0, f"{label!r} is not drawn (zero size)"
    plot = page.locator(f"{chart} .main-svg").first.bounding_box()
    assert plot is not None
    assert plot["x"] <= bar["x"] and bar["x"] + bar["width"] <= plot["x"] + plot["width"], "label cut off"
    ticks = _boxes(page, f"{chart} .ytick text")
    assert category in [t["text"] for t in ticks]
    for tick in ticks:
        gap = rect_gap(bar, tick)
        assert gap >= MIN_GAP_PX, f"{label!r} is {gap:.1f} px from the axis label {tick['text']!r}"


def test_a_zero_percent_bar_keeps_its_label(page: Page, console: ConsoleLog, tmp_path: Path):
    convs = [conv(f"r{i}", tags=("refunds",), passed=False) for i in range(4)]
    convs += [conv(f"o{i}", tags=("orders",), passed=i % 2 == 0, channel="voice") for i in range(4)]
    convs += [conv(f"s{i}", tags=("shipping",), passed=True, channel="voice") for i in range(6)]
    _draw_report(page, tmp_path, convs)
    _shot(page, "#chart-tags", "tags-zero-percent", tmp_path)
    _shot(page, "#chart-channels", "channels-zero-percent", tmp_path)
    _label_clear_of_axis(page, "#chart-tags", "0% of 4", "refunds")
    _label_clear_of_axis(page, "#chart-tags", "50% of 4", "orders")
    _label_clear_of_axis(page, "#chart-tags", "100% of 6", "shipping")
    _label_clear_of_axis(page, "#chart-channels", "0% of 4", "web")
    assert console.settle(page).errors == []


def test_redteam_labels_do_not_run_into_the_category_names(page: Page, console: ConsoleLog, tmp_path: Path):
    convs = [conv(f"x{i}", tags=("redteam", "cross_customer"), passed=True) for i in range(14)]
    convs += [conv(f"p{i}", tags=("redteam", "prompt_injection"), passed=i >= 3) for i in range(10)]
    _draw_report(page, tmp_path, convs)
    _shot(page, "#redteam", "redteam", tmp_path)
    _label_clear_of_axis(page, "#chart-redteam", "0% (0 of 14)", "cross_customer")
    _label_clear_of_axis(page, "#chart-redteam", "30% (3 of 10)", "prompt_injection")
    assert console.settle(page).errors == []


def test_pass_rate_by_tag_folds_when_every_tag_passed(page: Page, console: ConsoleLog, tmp_path: Path):
    convs = [conv(f"t{i}", tags=(f"topic-{i:02d}",), passed=True, channel="web") for i in range(30)]
    _draw_report(page, tmp_path, convs)
    _shot(page, "#chart-tags", "tags-all-passed", tmp_path)
    # No chart of 30 identical bars: one line says it.
    assert page.locator("#chart-tags .main-svg").count() == 0
    assert page.locator("#chart-tags").inner_text() == "All 30 tags at 100%: every judged conversation passed."
    assert page.locator("#chart-channels").inner_text() == "1 channel at 100%: every judged conversation passed."
    assert console.settle(page).errors == []

    # One failure anywhere brings the chart back, every tag in it.
    convs[7] = conv("t7", tags=("topic-07",), passed=False)
    _draw_report(page, tmp_path, convs)
    _shot(page, "#chart-tags", "tags-one-failed", tmp_path)
    assert page.locator("#chart-tags .main-svg").count() >= 1
    assert len(_boxes(page, "#chart-tags .ytick text")) == 30
    assert console.settle(page).errors == []


def _draw_load(page: Page, tmp_path: Path, report: Any) -> None:
    from evalkit.reports.load_html import write_load_outputs

    write_load_outputs(tmp_path, report)
    page.goto((tmp_path / "load.html").as_uri())
    page.wait_for_function("() => document.documentElement.dataset.charts === '1'", timeout=60_000)


def _title_box(page: Page, chart: str, title: str) -> dict[str, Any]:
    """The on-screen box of the element showing exactly ``title`` in the chart's card."""
    boxes = page.evaluate(
        """([sel, title]) => {
             const card = document.querySelector(sel).closest('.chart-card') || document.querySelector(sel);
             return Array.from(card.querySelectorAll('*'))
               .filter(e => e.children.length === 0 && e.textContent.trim() === title)
               .map(e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; });
           }""",
        [chart, title],
    )
    assert boxes, f"no title {title!r} for {chart}"
    return boxes[0]


def test_load_chart_titles_clear_the_plotly_toolbar(page: Page, console: ConsoleLog, tmp_path: Path):
    from test_load import _report

    page.set_viewport_size({"width": 1200, "height": 900})
    _draw_load(page, tmp_path, _report())
    for chart, title in [("#chart-latency", "Latency per agent turn"), ("#chart-throughput", "Throughput"),
                         ("#chart-errors", "Errors and timeouts")]:
        page.hover(chart)  # the toolbar shows while the pointer is over the chart
        modebar = page.locator(f"{chart} .modebar").bounding_box()
        assert modebar is not None and modebar["width"] > 0
        _shot(page, chart, f"load-{chart[7:]}", tmp_path, parent=True)
        gap = rect_gap(_title_box(page, chart, title), modebar)
        assert gap >= 0, f"{title!r} lies under the plotly toolbar ({-gap:.0f} px)"
    assert console.settle(page).errors == []


def test_load_errors_chart_says_no_errors_instead_of_an_empty_axis(page: Page, console: ConsoleLog, tmp_path: Path):
    from test_load import _report

    report = _report()
    report.steps = [s.model_copy(update={"errors": 0, "timeouts": 0, "error_rate": 0.0, "timeout_rate": 0.0})
                    for s in report.steps]
    _draw_load(page, tmp_path, report)
    _shot(page, "#chart-errors", "load-no-errors", tmp_path, parent=True)
    assert page.locator("#chart-errors .main-svg").count() == 0
    assert page.locator("#chart-errors").inner_text() == "No errors or timeouts at any step."
    # The other two charts still draw.
    assert page.locator("#chart-latency .main-svg").count() >= 1
    assert page.locator("#chart-throughput .main-svg").count() >= 1
    assert console.settle(page).errors == []
