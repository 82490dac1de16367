"""The ``evalkit load`` page (``load.html``): one self-contained file, plotly inlined.

Shows the settings, the headline figures, where p95 crossed the latency budget, charts of
latency / throughput / error rates against concurrency, the per-step table and the most
frequent errors. Data travels as JSON in a ``<script type="application/json">`` element
and the page's CSP allows only its own inline scripts (by hash) and no network.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.reports._embed import content_security_policy, environment, plotly_js, script_json
from evalkit.reports.load_report import LOAD_HTML, LOAD_JSON, LoadReport

__all__ = ["render_load_report", "write_load_outputs"]

_CHARTS_JS = r"""
(function () {
  var data = JSON.parse(document.getElementById('load-data').textContent);
  var steps = data.steps;
  var users = steps.map(function (s) { return s.users; });
  var cfg = {displaylogo: false, responsive: true};
  // Titles are the cards' headings, not plotly titles: those sat under plotly's toolbar.
  var layout = function (ytitle) {
    return {margin: {t: 30, r: 20, b: 45, l: 60},
            xaxis: {title: {text: 'concurrent users'}}, yaxis: {title: {text: ytitle}, rangemode: 'tozero'},
            legend: {orientation: 'h', y: -0.25}, height: 310};
  };
  var line = function (key, name, dash) {
    return {x: users, y: steps.map(function (s) { return s[key]; }), name: name, mode: 'lines+markers',
            line: {dash: dash || 'solid'}};
  };
  if (!window.Plotly) { return; }
  var lat = layout('ms');
  lat.shapes = [{type: 'line', xref: 'paper', x0: 0, x1: 1, y0: data.budget.latency_budget_ms,
                 y1: data.budget.latency_budget_ms, line: {color: '#c0392b', dash: 'dot'}}];
  lat.annotations = [{xref: 'paper', x: 1, y: data.budget.latency_budget_ms, text: 'budget',
                      showarrow: false, yanchor: 'bottom', xanchor: 'right', font: {color: '#c0392b'}}];
  Plotly.newPlot('chart-latency', [line('latency_p50_ms', 'p50'), line('latency_p95_ms', 'p95'),
    line('latency_p99_ms', 'p99'), line('ttft_p50_ms', 'TTFT p50', 'dot'), line('ttft_p95_ms', 'TTFT p95', 'dot')],
    lat, cfg);
  Plotly.newPlot('chart-throughput', [line('turns_per_s', 'turns/s'),
    line('conversations_per_s', 'conversations/s', 'dash')], layout('per second'), cfg);
  var pct = function (key) { return steps.map(function (s) { return s[key] === null ? null : s[key] * 100; }); };
  var failed = steps.some(function (s) { return s.error_rate > 0 || s.timeout_rate > 0; });
  if (failed) {
    Plotly.newPlot('chart-errors', [
      {x: users, y: pct('error_rate'), name: 'errors', type: 'bar'},
      {x: users, y: pct('timeout_rate'), name: 'timeouts', type: 'bar'}],
      Object.assign(layout('% of turns'), {barmode: 'stack'}), cfg);
  } else {
    // Nothing to draw: an empty 0-1 axis would only suggest a scale that is not there.
    var note = document.getElementById('chart-errors');
    note.className = 'chart-note';
    note.textContent = steps.length ? 'No errors or timeouts at any step.' : 'No steps ran.';
  }
  document.documentElement.dataset.charts = '1';  // for tests and benchmarks: charts drawn
})();
"""

_TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evalkit load: {{ r.agent }}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 14px 24px; }
header h1 { font-size: 18px; margin: 0 0 4px; }
header p { margin: 0; color: #c9cfdb; font-size: 13px; }
main { padding: 16px 24px 40px; max-width: 1200px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 16px; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 10px 14px; min-width: 140px; }
.card b { display: block; font-size: 20px; }
.card span { color: #5b6475; font-size: 12px; }
.verdict { padding: 10px 14px; border-radius: 6px; margin: 8px 0 16px; }
.verdict.bad { background: #fdecea; border: 1px solid #f5b7b1; }
.verdict.good { background: #e9f7ef; border: 1px solid #a9dfbf; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 12px; }
.chart-card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding-top: 10px; }
.chart-card h3 { font-size: 15px; font-weight: 600; margin: 0 14px; }
.chart-note { color: #5b6475; padding: 24px 14px; }
table { border-collapse: collapse; background: #fff; width: 100%; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #dde1e8; padding: 4px 8px; text-align: right; }
th { background: #eef0f4; }
td:first-child, th:first-child { text-align: left; }
tr.over td { background: #fdecea; }
code { background: #eef0f4; padding: 0 4px; border-radius: 3px; }
</style>
</head>
<body>
<header>
<h1>Load test: {{ r.agent }}</h1>
<p>{{ r.scenarios }} scenarios from {{ r.suites | join(", ") or "(suite)" }} · {{ s.users }} users, ramp {{ s.ramp_s }} s
 in {{ s.steps }} steps, duration {{ s.duration_s }} s · turn timeout {{ s.turn_timeout_s }} s ·
 {{ "streaming (SSE)" if s.stream else "JSON replies" }} · started {{ r.started_at }} · stopped by {{ r.stopped_by }}</p>
</header>
<main>
{% if r.budget.crossed %}
<div class="verdict bad">p95 latency crossed the budget of {{ r.budget.latency_budget_ms | round(0) | int }} ms at
<b>{{ r.budget.crossed_at_users }} concurrent users</b> (step {{ r.budget.crossed_at_step }}){% if r.budget.max_users_within_budget %};
the highest concurrency within budget was {{ r.budget.max_users_within_budget }} users{% endif %}.</div>
{% else %}
<div class="verdict good">p95 latency stayed within the budget of {{ r.budget.latency_budget_ms | round(0) | int }} ms
up to {{ r.budget.max_users_within_budget or s.users }} concurrent users.</div>
{% endif %}
<div class="cards">
{% for label, value in cards %}<div class="card"><b>{{ value }}</b><span>{{ label }}</span></div>
{% endfor %}
</div>
{% if warn %}<p><b>Note:</b> {{ warn }}</p>{% endif %}
<div class="charts">
<div class="chart-card"><h3>Latency per agent turn</h3><div id="chart-latency"></div></div>
<div class="chart-card"><h3>Throughput</h3><div id="chart-throughput"></div></div>
<div class="chart-card"><h3>Errors and timeouts</h3><div id="chart-errors"></div></div>
</div>
<h2>Per concurrency step</h2>
<table>
<thead><tr><th>step</th><th>users</th><th>window s</th><th>turns</th><th>turns/s</th><th>conv./s</th>
<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>TTFT p50</th><th>TTFT p95</th><th>errors</th><th>timeouts</th></tr></thead>
<tbody>
{% for st in r.steps %}<tr class="{{ 'over' if st.over_budget else '' }}"><td>{{ st.step }}</td><td>{{ st.users }}</td>
<td>{{ "%.1f–%.1f" | format(st.start_s, st.end_s) }}</td><td>{{ st.requests }}</td><td>{{ st.turns_per_s }}</td>
<td>{{ st.conversations_per_s }}</td><td>{{ fmt(st.latency_p50_ms) }}</td><td>{{ fmt(st.latency_p95_ms) }}</td>
<td>{{ fmt(st.latency_p99_ms) }}</td><td>{{ fmt(st.latency_max_ms) }}</td><td>{{ fmt(st.ttft_p50_ms) }}</td>
<td>{{ fmt(st.ttft_p95_ms) }}</td><td>{{ st.errors }}</td><td>{{ st.timeouts }}</td></tr>
{% endfor %}
</tbody>
</table>
<h2>Errors</h2>
{% if r.errors %}
<table><thead><tr><th>message</th><th>count</th></tr></thead><tbody>
{% for e in r.errors %}<tr><td>{{ e.message }}</td><td>{{ e.count }}</td></tr>{% endfor %}
</tbody></table>
{% else %}<p>None.</p>{% endif %}
<p>Raw figures: <code>load.json</code> next to this file. Generated by <code>evalkit load</code>.</p>
</main>
<script type="application/json" id="load-data">{{ data }}</script>
{% if plotly %}<script>{{ plotly }}</script>{% endif %}
<script>{{ charts }}</script>
</body>
</html>
"""


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}%"


def render_load_report(report: LoadReport, *, charts: bool = True) -> str:
    """The HTML page for one load test."""
    from markupsafe import Markup

    t = report.totals
    cards: list[tuple[str, str]] = [
        ("agent turns", f"{t.requests:,}"),
        ("turns / s", f"{t.turns_per_s:g}"),
        ("conversations / s", f"{t.conversations_per_s:g}"),
        ("latency p50", f"{_fmt(t.latency_p50_ms)} ms"),
        ("latency p95", f"{_fmt(t.latency_p95_ms)} ms"),
        ("latency p99", f"{_fmt(t.latency_p99_ms)} ms"),
        ("TTFT p50", f"{_fmt(t.ttft_p50_ms)} ms"),
        ("error rate", _pct(t.error_rate)),
        ("timeout rate", _pct(t.timeout_rate)),
        ("conversations done / failed / cut",
         f"{t.conversations_completed} / {t.conversations_failed} / {t.conversations_cut}"),
    ]
    warn = None
    if report.wall_s > 0 and report.generator_cpu_s > 0.8 * report.wall_s:
        warn = (f"evalkit itself used {report.generator_cpu_s:.1f} s of CPU in {report.wall_s:.1f} s: the load "
                "generator may have been the bottleneck (run it on another machine or use fewer users).")
    plotly = plotly_js() if charts else ""
    scripts = [s for s in (plotly, _CHARTS_JS) if s]
    # Jinja autoescaping stays on for everything from the report; only our own code is Markup.
    return environment().from_string(_TEMPLATE).render(
        r=report,
        s=report.settings,
        cards=cards,
        warn=warn,
        fmt=_fmt,
        data=script_json(report.model_dump(mode="json")),
        plotly=Markup(plotly),
        charts=Markup(_CHARTS_JS),
        csp=content_security_policy(scripts),
    )


def write_load_outputs(out: Path, report: LoadReport) -> list[Path]:
    """Write ``load.json`` and ``load.html`` into ``out`` (atomically)."""
    from evalkit.core.files import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    payload = report.model_dump_json(indent=2).encode()
    atomic_write(out / LOAD_JSON, lambda fh: fh.write(payload))
    html = render_load_report(report).encode()
    atomic_write(out / LOAD_HTML, lambda fh: fh.write(html))
    return [out / LOAD_JSON, out / LOAD_HTML]
