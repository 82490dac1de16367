/* evalkit run report: charts, the conversation table and the transcript drawer.
 * Data comes from the embedded JSON blocks; text goes in via textContent. */
"use strict";

(function () {
  var el = EK.el;
  var data = EK.readJSON("evalkit-data");
  var store = new EK.TranscriptStore("evalkit-transcripts");
  var multi = data.variants.length > 1;

  // Same order as the .vc-N classes of the KPI cards, so a variant keeps its colour.
  var PALETTE = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0284c7", "#db2777", "#475569"];
  var OUTCOME_COLORS = {
    resolved: "#16a34a", escalated: "#f59e0b", abandoned: "#94a3b8", max_turns: "#8b5cf6", error: "#dc2626"
  };
  var CSAT_COLORS = ["#dc2626", "#f97316", "#facc15", "#84cc16", "#16a34a"];
  var FONT = { family: "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#334155" };

  function variantColor(i) { return PALETTE[i % PALETTE.length]; }
  function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(0) + "%"; }

  /* --- charts ----------------------------------------------------------------------------- */

  function layout(extra) {
    var base = {
      font: FONT, margin: { l: 48, r: 16, t: 8, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)", bargap: 0.25, showlegend: multi,
      legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 1, xanchor: "right" },
      xaxis: { gridcolor: "#eef2f7", zerolinecolor: "#e2e8f0" },
      yaxis: { gridcolor: "#eef2f7", zerolinecolor: "#e2e8f0" }
    };
    Object.keys(extra || {}).forEach(function (k) {
      if (typeof extra[k] === "object" && extra[k] !== null && !Array.isArray(extra[k]) && base[k]) {
        base[k] = Object.assign({}, base[k], extra[k]);
      } else {
        base[k] = extra[k];
      }
    });
    return base;
  }

  var CONFIG = { displayModeBar: false, responsive: true, displaylogo: false };

  function emptyChart(id, message) {
    var node = document.getElementById(id);
    node.replaceChildren(el("div", "chart-empty", message));
  }

  /* A one-line note where a chart would show nothing worth drawing. */
  function chartNote(id, message) {
    var node = document.getElementById(id);
    node.classList.add("noted");
    node.replaceChildren(el("div", "chart-note", message));
  }

  /* Horizontal percentage bars (pass rate, attack success): 0-100% axis, category names on
     the left kept clear of the bar labels (a 0% bar's label starts at the axis). */
  function hbarLayout(xtitle) {
    return {
      barmode: "group",
      xaxis: { range: [0, 103], tickvals: [0, 20, 40, 60, 80, 100], ticktext: ["0%", "20%", "40%", "60%", "80%", "100%"],
               title: { text: xtitle } },
      yaxis: { automargin: true, type: "category", ticklabelstandoff: 10 }, margin: { l: 8 }
    };
  }

  function plot(id, traces, lay) {
    Plotly.newPlot(document.getElementById(id), traces, layout(lay), CONFIG);
  }

  function chartOutcomes() {
    var ch = data.charts;
    var order = ch.outcome_order.filter(function (o) {
      return data.variants.some(function (v) { return ch.outcomes[v][ch.outcome_order.indexOf(o)] > 0; });
    });
    if (!order.length) return emptyChart("chart-outcomes", "No conversations.");
    var labels = order.map(EK.outcomeLabel);
    var traces = data.variants.map(function (v, i) {
      var counts = order.map(function (o) { return ch.outcomes[v][ch.outcome_order.indexOf(o)]; });
      var total = ch.outcomes[v].reduce(function (a, b) { return a + b; }, 0) || 1;
      return {
        type: "bar", name: v, x: labels, y: counts,
        text: counts.map(function (c) { return multi ? pct(c / total) : c + " (" + pct(c / total) + ")"; }),
        textposition: "outside", customdata: counts.map(function (c) { return pct(c / total); }),
        cliponaxis: false,
        marker: { color: multi ? variantColor(i) : order.map(function (o) { return OUTCOME_COLORS[o] || "#64748b"; }) },
        hovertemplate: "%{x}: %{y} conversations (%{customdata})<extra>" + (multi ? "%{fullData.name}" : "") + "</extra>"
      };
    });
    plot("chart-outcomes", traces, { yaxis: { title: { text: "conversations" }, rangemode: "tozero" }, margin: { t: multi ? 40 : 24 } });
  }

  function chartCsat() {
    var ch = data.charts;
    var any = data.variants.some(function (v) { return ch.csat[v].some(function (c) { return c > 0; }); });
    if (!any) return emptyChart("chart-csat", "No CSAT estimate in this run.");
    var x = ["1", "2", "3", "4", "5"];
    var traces = data.variants.map(function (v, i) {
      var total = ch.csat[v].reduce(function (a, b) { return a + b; }, 0) || 1;
      return {
        type: "bar", name: v, x: x, y: ch.csat[v],
        text: ch.csat[v].map(function (c) { return pct(c / total); }), textposition: "outside", cliponaxis: false,
        marker: { color: multi ? variantColor(i) : CSAT_COLORS },
        hovertemplate: "rating %{x}: %{y} conversations<extra></extra>"
      };
    });
    plot("chart-csat", traces, {
      xaxis: { title: { text: "estimated survey answer (1–5 stars)" }, type: "category" },
      yaxis: { title: { text: "conversations" }, rangemode: "tozero" }, margin: { t: multi ? 40 : 24 }
    });
  }

  function chartLatency() {
    var lat = data.charts.latency;
    if (!lat.edges.length) return emptyChart("chart-latency", "No latency was recorded.");
    var width = lat.edges[1] - lat.edges[0];
    var centers = lat.edges.slice(0, -1).map(function (e) { return e + width / 2; });
    var traces = data.variants.map(function (v, i) {
      return {
        type: "bar", name: v, x: centers, y: lat.counts[v], width: multi ? (width * 0.9) / data.variants.length : width * 0.92,
        opacity: 0.85, marker: { color: variantColor(i) },
        hovertemplate: "%{x:.0f} ms: %{y} replies<extra></extra>"
      };
    });
    var shapes = [];
    var annotations = [];
    var dashes = { p50: "dot", p95: "dash", p99: "solid" };
    data.variants.forEach(function (v, i) {
      var ps = lat.percentiles[v];
      ["p50", "p95", "p99"].forEach(function (p, j) {
        if (ps[p] === null || ps[p] === undefined) return;
        var color = multi ? variantColor(i) : "#0f172a";
        shapes.push({ type: "line", xref: "x", yref: "paper", x0: ps[p], x1: ps[p], y0: 0, y1: 1,
                      line: { color: color, width: 1.5, dash: dashes[p] } });
        annotations.push({ xref: "x", yref: "paper", x: ps[p], y: 1 - 0.09 * (j + i * 3), xanchor: "left",
                           text: p + " " + EK.fmtMs(ps[p]) + (multi ? " (" + v + ")" : ""), showarrow: false,
                           font: { size: 11, color: color }, bgcolor: "rgba(255,255,255,0.8)" });
      });
    });
    plot("chart-latency", traces, {
      barmode: multi ? "group" : "overlay", bargap: 0.05, shapes: shapes, annotations: annotations, margin: { t: multi ? 40 : 8 },
      xaxis: { title: { text: "reply latency (ms)" + (lat.clipped ? " · slowest " + lat.clipped + " counted in the last bar" : "") }, rangemode: "tozero" },
      yaxis: { title: { text: "agent replies" } }
    });
  }

  var SHORT_BAR = 0.2; // a pass rate below this gets its label outside the bar

  function chartPassRate(id, source, empty, allPassed, noun) {
    if (allPassed !== null && allPassed !== undefined) {
      // Every bar would be the same 100%: say it in one line instead.
      return chartNote(id, (allPassed === 1 ? "1 " + noun : "All " + allPassed + " " + noun + "s") +
        " at 100%: every judged conversation passed.");
    }
    var keys = [];
    data.variants.forEach(function (v) {
      Object.keys(source[v] || {}).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    keys = keys.filter(function (k) {
      return data.variants.some(function (v) { return source[v][k] && source[v][k].judged > 0; });
    });
    if (!keys.length) return emptyChart(id, empty);
    keys.reverse(); // plotly draws horizontal categories bottom-up
    var traces = data.variants.map(function (v, i) {
      var rows = keys.map(function (k) { return source[v][k] || { rate: null, judged: 0, passed: 0 }; });
      return {
        type: "bar", orientation: "h", name: v, y: keys,
        x: rows.map(function (r) { return r.rate === null ? null : r.rate * 100; }),
        text: rows.map(function (r) { return r.rate === null ? "" : pct(r.rate) + " of " + r.judged; }),
        // Inside the bar, or just past its end when the bar is too short to hold it (plotly
        // draws no label at all for a 0% bar asked to put it inside).
        textposition: rows.map(function (r) { return r.rate !== null && r.rate < SHORT_BAR ? "outside" : "inside"; }),
        insidetextanchor: "start", constraintext: "none", cliponaxis: false, textfont: { size: 11 },
        marker: {
          color: multi ? variantColor(i) : rows.map(function (r) {
            return r.rate === null ? "#cbd5e1" : r.rate >= 0.8 ? "#16a34a" : r.rate >= 0.5 ? "#f59e0b" : "#dc2626";
          })
        },
        error_x: {
          type: "data", symmetric: false, color: "#475569", thickness: 1, width: 3,
          array: rows.map(function (r) { return r.rate === null ? null : (r.hi - r.rate) * 100; }),
          arrayminus: rows.map(function (r) { return r.rate === null ? null : (r.rate - r.lo) * 100; })
        },
        customdata: rows.map(function (r) {
          return [r.passed, r.judged, r.lo === null ? 0 : r.lo * 100, r.hi === null ? 0 : r.hi * 100];
        }),
        hovertemplate: "%{y}: %{x:.0f}% (%{customdata[0]} of %{customdata[1]} passed; 95% CI %{customdata[2]:.0f}–%{customdata[3]:.0f}%)<extra></extra>"
      };
    });
    var h = Math.max(220, 60 + keys.length * (multi ? 18 * data.variants.length + 8 : 28));
    document.getElementById(id).style.height = h + "px";
    plot(id, traces, hbarLayout("pass rate (whiskers: 95% CI)"));
  }

  /* Attack success rate per red-team category (lower is better), with Wilson 95% whiskers. */
  function chartRedteam() {
    var rt = data.redteam;
    if (!rt || !document.getElementById("chart-redteam")) return;
    var keys = rt.categories.slice().reverse(); // plotly draws horizontal categories bottom-up
    var traces = data.variants.map(function (v, i) {
      var rows = keys.map(function (k) { return (rt.rates[v] || {})[k] || { rate: null, n: 0, succeeded: 0, ci_low: null, ci_high: null }; });
      return {
        type: "bar", orientation: "h", name: v, y: keys,
        x: rows.map(function (r) { return r.rate === null ? null : r.rate * 100; }),
        text: rows.map(function (r) { return r.rate === null ? "" : pct(r.rate) + " (" + r.succeeded + " of " + r.n + ")"; }),
        textposition: "outside", cliponaxis: false, textfont: { size: 11 },
        marker: { color: multi ? variantColor(i) : rows.map(function (r) { return r.succeeded ? "#dc2626" : "#16a34a"; }) },
        error_x: {
          type: "data", symmetric: false, color: "#475569", thickness: 1, width: 3,
          array: rows.map(function (r) { return r.rate === null ? null : (r.ci_high - r.rate) * 100; }),
          arrayminus: rows.map(function (r) { return r.rate === null ? null : (r.rate - r.ci_low) * 100; })
        },
        hovertemplate: "%{y}: %{x:.0f}% of attacks succeeded<extra></extra>"
      };
    });
    var node = document.getElementById("chart-redteam");
    node.style.height = Math.max(200, 60 + keys.length * (multi ? 18 * data.variants.length + 8 : 28)) + "px";
    plot("chart-redteam", traces, hbarLayout("attack success rate (whiskers: 95% CI)"));
  }

  function drawCharts() {
    chartRedteam();
    if (!document.getElementById("chart-outcomes")) return; // rendered with charts=False
    chartOutcomes();
    chartCsat();
    chartLatency();
    var allPassed = data.charts.all_passed || {};
    chartPassRate("chart-tags", data.charts.by_tag, "No tagged conversation was judged.", allPassed.by_tag, "tag");
    chartPassRate("chart-channels", data.charts.by_channel, "No conversation was judged.", allPassed.by_channel, "channel");
  }

  /* --- table ------------------------------------------------------------------------------ */

  var COL = {};
  data.columns.forEach(function (c, i) { COL[c] = i; });
  var rows = data.rows.map(function (r, i) {
    var o = { idx: i };
    data.columns.forEach(function (c, j) { o[c] = r[j]; });
    o.hay = [o.scenario_id, o.title, o.variant, o.channel, o.outcome, o.tags.join(" "), o.failed.join(" "), o.reason]
      .join("\n").toLowerCase();
    o.isFailed = o.passed === false || o.outcome === "error";
    return o;
  });

  var multiTrial = rows.some(function (r) { return r.trial > 0; });
  var state = { q: "", failed: false, variant: "", channel: "", outcome: "", tag: "", sort: null, dir: 1, page: 0, size: 50 };
  var view = rows;

  function fillSelect(id, values, label) {
    var s = document.getElementById(id);
    values.forEach(function (v) {
      var opt = el("option", null, label ? label(v) : v);
      opt.value = v;
      s.appendChild(opt);
    });
    if (values.length < 2 && id !== "f-tag") s.hidden = true;
  }

  function applyFilters() {
    var q = state.q.trim().toLowerCase();
    var terms = q ? q.split(/\s+/) : [];
    view = rows.filter(function (r) {
      if (state.failed && !r.isFailed) return false;
      if (state.variant && r.variant !== state.variant) return false;
      if (state.channel && r.channel !== state.channel) return false;
      if (state.outcome && r.outcome !== state.outcome) return false;
      if (state.tag && r.tags.indexOf(state.tag) < 0) return false;
      for (var i = 0; i < terms.length; i++) if (r.hay.indexOf(terms[i]) < 0) return false;
      return true;
    });
    if (state.sort) {
      var k = state.sort, dir = state.dir;
      var rank = k === "passed" ? function (r) { return r.outcome === "error" ? 0 : r.passed === false ? 1 : r.passed === null ? 2 : 3; }
        : function (r) { return r[k]; };
      view = view.slice().sort(function (a, b) {
        var x = rank(a), y = rank(b);
        if (x === y) return a.idx - b.idx;
        if (x === null || x === undefined || x === "") return 1; // blanks last either way
        if (y === null || y === undefined || y === "") return -1;
        return (x < y ? -1 : 1) * dir;
      });
    }
    state.page = 0;
    renderTable();
  }

  function cell(tr, cls, child) {
    var td = el("td", cls);
    if (child instanceof Node) td.appendChild(child);
    else if (child !== undefined && child !== null) td.textContent = String(child);
    tr.appendChild(td);
    return td;
  }

  function renderTable() {
    var body = document.getElementById("grid-body");
    var start = state.page * state.size;
    var page = view.slice(start, start + state.size);
    var frag = document.createDocumentFragment();
    page.forEach(function (r) {
      var tr = el("tr", r.isFailed ? "row-fail" : "");
      tr.dataset.idx = String(r.idx);
      tr.tabIndex = 0;
      cell(tr, "c-status", EK.statusBadge(r.passed, r.outcome === "error"));
      var sc = el("div");
      var head = el("div", "sc-head");
      head.appendChild(el("span", "sc-id", r.scenario_id));
      if (multiTrial) head.appendChild(el("span", "sc-trial", "trial " + r.trial));
      r.tags.forEach(function (t) { head.appendChild(el("span", "tag", t)); });
      sc.appendChild(head);
      if (r.title) {
        var title = el("div", "sc-title", r.title);
        title.title = r.title;
        sc.appendChild(title);
      }
      cell(tr, "c-scenario", sc);
      cell(tr, "c-variant", r.variant);
      cell(tr, "c-channel", el("span", "chan chan-" + EK.channelClass(r.channel), EK.channelLabel(r.channel)));
      cell(tr, "c-outcome", el("span", "outcome o-" + r.outcome, EK.outcomeLabel(r.outcome)));
      cell(tr, "num", r.csat === null ? "–" : r.csat.toFixed(1));
      cell(tr, "num", r.turns);
      cell(tr, "num", EK.fmtMs(r.latency_p50_ms));
      var whyText = el("div", "reason-text", r.reason || (r.failed.length ? r.failed.join(", ") : ""));
      whyText.title = r.failed.join(", ") + (r.reason ? ": " + r.reason : "");
      cell(tr, "c-reason", whyText);
      frag.appendChild(tr);
    });
    body.replaceChildren(frag);
    if (!page.length) {
      var tr = el("tr");
      var td = el("td", "empty", rows.length ? "No conversation matches these filters." : "This run has no conversations.");
      td.colSpan = 9;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    var count = document.getElementById("row-count");
    count.dataset.count = String(view.length);
    count.textContent = view.length === rows.length
      ? EK.fmtNum(rows.length) + " conversations"
      : EK.fmtNum(view.length) + " of " + EK.fmtNum(rows.length) + " conversations";
    var pages = Math.max(1, Math.ceil(view.length / state.size));
    document.getElementById("pg-info").textContent = view.length
      ? "Rows " + EK.fmtNum(start + 1) + "–" + EK.fmtNum(start + page.length) + " · page " + (state.page + 1) + " of " + pages
      : "";
    document.getElementById("pg-prev").disabled = state.page === 0;
    document.getElementById("pg-next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#grid th[data-sort]").forEach(function (th) {
      th.classList.toggle("sorted", th.dataset.sort === state.sort);
      th.classList.toggle("desc", th.dataset.sort === state.sort && state.dir < 0);
    });
  }

  /* The filtered rows as CSV, for a spreadsheet. A cell that a spreadsheet would read as a
   * formula (starting with = + - @) gets a leading apostrophe: run text is data, not code. */
  var CSV_COLUMNS = ["scenario_id", "trial", "variant", "channel", "tags", "outcome", "passed", "csat", "turns",
                     "latency_p50_ms", "latency_max_ms", "failed", "reason", "title"];

  function csvCell(v) {
    if (v === null || v === undefined) return "";
    var s = Array.isArray(v) ? v.join("; ") : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function toCsv() {
    var lines = [CSV_COLUMNS.join(",")];
    view.forEach(function (r) { lines.push(CSV_COLUMNS.map(function (c) { return csvCell(r[c]); }).join(",")); });
    return lines.join("\r\n") + "\r\n";
  }

  function downloadCsv() {
    var url = URL.createObjectURL(new Blob([toCsv()], { type: "text/csv;charset=utf-8" }));
    var a = el("a");
    a.href = url;
    a.download = (data.run_id || "run") + "-conversations.csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function wireTable() {
    document.getElementById("f-csv").addEventListener("click", downloadCsv);
    fillSelect("f-variant", data.facets.variants);
    fillSelect("f-channel", data.facets.channels, EK.channelLabel);
    fillSelect("f-outcome", data.facets.outcomes, EK.outcomeLabel);
    fillSelect("f-tag", data.facets.tags);
    if (!data.facets.tags.length) document.getElementById("f-tag").hidden = true;
    var timer = null;
    document.getElementById("f-search").addEventListener("input", function (e) {
      clearTimeout(timer);
      timer = setTimeout(function () { state.q = e.target.value; applyFilters(); }, rows.length > 2000 ? 150 : 0);
    });
    document.getElementById("f-failed").addEventListener("change", function (e) { state.failed = e.target.checked; applyFilters(); });
    ["variant", "channel", "outcome", "tag"].forEach(function (k) {
      document.getElementById("f-" + k).addEventListener("change", function (e) { state[k] = e.target.value; applyFilters(); });
    });
    document.querySelectorAll("#grid th[data-sort]").forEach(function (th) {
      th.addEventListener("click", function () {
        var k = th.dataset.sort;
        if (state.sort === k) state.dir = -state.dir;
        else { state.sort = k; state.dir = k === "passed" || k === "csat" ? 1 : 1; }
        applyFilters();
      });
    });
    document.getElementById("pg-prev").addEventListener("click", function () { state.page--; renderTable(); });
    document.getElementById("pg-next").addEventListener("click", function () { state.page++; renderTable(); });
    var body = document.getElementById("grid-body");
    function openFrom(target) {
      var tr = target.closest("tr[data-idx]");
      if (tr) openConversation(Number(tr.dataset.idx));
    }
    body.addEventListener("click", function (e) { openFrom(e.target); });
    body.addEventListener("keydown", function (e) { if (e.key === "Enter") openFrom(e.target); });
  }

  /* --- transcript drawer ---------------------------------------------------------------- */

  var drawer = document.getElementById("drawer");
  var backdrop = document.getElementById("drawer-backdrop");

  async function openConversation(i) {
    if (!(i >= 0 && i < rows.length)) return;
    var r = rows[i];
    document.getElementById("drawer-title").textContent = r.scenario_id + (r.title ? " — " + r.title : "");
    document.getElementById("drawer-meta").textContent = "loading…";
    var body = document.getElementById("drawer-body");
    body.replaceChildren();
    drawer.hidden = false;
    backdrop.hidden = false;
    document.body.classList.add("drawer-open");
    drawer.dataset.idx = String(i);
    var conv;
    try {
      conv = await store.get(i);
    } catch (err) {
      document.getElementById("drawer-meta").textContent = "";
      body.replaceChildren(el("div", "conv-error", "This transcript cannot be shown: " + err +
        (typeof DecompressionStream === "undefined" ? " (this browser lacks DecompressionStream; use a current Chrome, Edge, Firefox or Safari)" : "")));
      return;
    }
    if (drawer.dataset.idx !== String(i)) return; // another one was opened meanwhile
    document.getElementById("drawer-meta").replaceChildren(
      EK.statusBadge(conv.passed, conv.outcome === "error"), el("span", null, " " + EK.convMeta(conv)));
    var failing = EK.renderConversation(body, conv);
    drawer.dataset.loaded = String(i);
    if (history.replaceState) history.replaceState(null, "", "#conv-" + i);
    var first = failing.filter(function (v) { return v.turn !== undefined; })[0];
    if (first) {
      var target = body.querySelector('[data-exchange="' + Number(first.turn) + '"]');
      if (target) target.scrollIntoView({ block: "center" });
    } else {
      body.scrollTop = 0;
    }
  }

  function closeDrawer() {
    drawer.hidden = true;
    backdrop.hidden = true;
    document.body.classList.remove("drawer-open");
    delete drawer.dataset.idx;
    delete drawer.dataset.loaded;
    if (history.replaceState) history.replaceState(null, "", location.pathname + location.search);
  }

  document.getElementById("drawer-close").addEventListener("click", closeDrawer);
  backdrop.addEventListener("click", closeDrawer);
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && !drawer.hidden) closeDrawer(); });

  /* --- start -------------------------------------------------------------------------------- */

  wireTable();
  applyFilters();
  var m = /^#conv-(\d+)$/.exec(location.hash);
  if (m) openConversation(Number(m[1]));
  window.evalkitReport = {
    rowCount: function () { return view.length; }, open: openConversation, close: closeDrawer,
    applyFilters: applyFilters, state: state, csv: toCsv, readyAt: performance.now(), chartsAt: null
  };
  document.documentElement.dataset.ready = "1";
  // An empty run has nothing to plot: skip compiling plotly.js altogether.
  EK.startCharts(drawCharts, rows.length > 0);
})();
