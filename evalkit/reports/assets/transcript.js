/* evalkit report pages: shared helpers and the transcript viewer.
 *
 * Every piece of run data (transcripts, tool arguments and results, titles, judge reasons)
 * is put into the page with textContent or as a DOM property: never innerHTML, never as
 * markup. That is what keeps a hostile transcript inert.
 */
"use strict";

var EK = (function () {
  var CHANNELS = { web: "Web chat", whatsapp: "WhatsApp", slack: "Slack", voice: "Voice" };
  var OUTCOME_LABELS = {
    resolved: "Resolved", escalated: "Escalated", abandoned: "Abandoned",
    max_turns: "Hit max turns", error: "Error"
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function fmtMs(x) {
    if (x === null || x === undefined) return "–";
    return x >= 1000 ? (x / 1000).toFixed(2) + " s" : Math.round(x) + " ms";
  }

  function fmtNum(x, nd) {
    if (x === null || x === undefined) return "–";
    return Number(x).toLocaleString("en-US", { minimumFractionDigits: nd || 0, maximumFractionDigits: nd || 0 });
  }

  function channelClass(ch) {
    return Object.prototype.hasOwnProperty.call(CHANNELS, ch) ? ch : "web";
  }

  function channelLabel(ch) {
    return Object.prototype.hasOwnProperty.call(CHANNELS, ch) ? CHANNELS[ch] : String(ch);
  }

  function outcomeLabel(o) {
    return Object.prototype.hasOwnProperty.call(OUTCOME_LABELS, o) ? OUTCOME_LABELS[o] : String(o);
  }

  /* A pass / fail / n/a badge for a conversation or a verdict. */
  function statusBadge(passed, errored) {
    if (errored) return el("span", "badge error", "ERROR");
    if (passed === true) return el("span", "badge pass", "PASS");
    if (passed === false) return el("span", "badge fail", "FAIL");
    return el("span", "badge na", "n/a");
  }

  function pretty(value) {
    if (typeof value === "string") return value;
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  /* --- transcript store: chunks of conversations, plain JSON or gzip+base64 ------------ */

  function TranscriptStore(elementId) {
    this.elementId = elementId;
    this.store = null;
    this.chunks = new Map();
  }

  TranscriptStore.prototype._load = function () {
    if (this.store === null) this.store = readJSON(this.elementId);
    return this.store;
  };

  TranscriptStore.prototype._chunk = async function (ci) {
    if (this.chunks.has(ci)) return this.chunks.get(ci);
    var store = this._load();
    var raw = store.chunks[ci];
    var chunk;
    if (store.encoding === "gzip+base64") {
      var bin = atob(raw);
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      chunk = JSON.parse(await new Response(stream).text());
    } else {
      chunk = raw;
    }
    this.chunks.set(ci, chunk);
    return chunk;
  };

  /* The conversation at index i (a promise). */
  TranscriptStore.prototype.get = async function (i) {
    var store = this._load();
    var chunk = await this._chunk(Math.floor(i / store.chunk_size));
    return chunk[i % store.chunk_size];
  };

  /* --- transcript rendering --------------------------------------------------------------- */

  function verdictState(v) {
    if (v.error) return "error";
    if (v.skipped) return "skipped";
    if (v.passed === true) return "pass";
    if (v.passed === false) return "fail";
    return "info";
  }

  var VERDICT_ICON = { pass: "✓", fail: "✗", error: "!", skipped: "–", info: "•" };

  function verdictLine(v, opts) {
    var state = verdictState(v);
    var row = el("div", "verdict v-" + state);
    row.appendChild(el("span", "v-icon", VERDICT_ICON[state]));
    var body = el("div", "v-body");
    var head = el("div", "v-head");
    head.appendChild(el("span", "v-name", v.spec || v.judge));
    if (v.kind && v.kind !== "deterministic") head.appendChild(el("span", "v-kind", v.kind));
    if (v.score !== undefined) head.appendChild(el("span", "v-score", "score " + v.score));
    if (v.label) head.appendChild(el("span", "v-score", v.label));
    if (v.turn !== undefined && opts && opts.onTurn) {
      var link = el("button", "v-turn", "turn " + v.turn);
      link.type = "button";
      link.addEventListener("click", function () { opts.onTurn(v.turn); });
      head.appendChild(link);
    }
    body.appendChild(head);
    var why = v.error ? "judge error: " + v.error : (v.reason || v.skipped || "");
    if (why) body.appendChild(el("div", "v-reason", why));
    row.appendChild(body);
    return row;
  }

  function toolCall(tc) {
    var d = el("details", "tool" + (tc.error ? " tool-error" : ""));
    var s = el("summary");
    s.appendChild(el("span", "tool-icon", "⚙"));
    s.appendChild(el("span", "tool-name", tc.name));
    var args = tc.arguments ? Object.keys(tc.arguments).map(function (k) {
      var v = tc.arguments[k];
      var sv = typeof v === "string" ? v : JSON.stringify(v);
      if (sv.length > 40) sv = sv.slice(0, 39) + "…";
      return k + "=" + sv;
    }).join(", ") : "";
    s.appendChild(el("span", "tool-args", "(" + args + ")"));
    if (tc.error) s.appendChild(el("span", "tool-flag", "failed"));
    d.appendChild(s);
    d.appendChild(el("div", "tool-label", "Arguments"));
    d.appendChild(el("pre", "tool-pre", pretty(tc.arguments || {})));
    if (tc.result !== undefined) {
      d.appendChild(el("div", "tool-label", "Result"));
      d.appendChild(el("pre", "tool-pre", pretty(tc.result)));
    }
    if (tc.error) {
      d.appendChild(el("div", "tool-label", "Error"));
      d.appendChild(el("pre", "tool-pre err", tc.error));
    }
    return d;
  }

  function agentMeta(t) {
    var parts = [];
    if (t.latency_ms !== undefined) parts.push(fmtMs(t.latency_ms));
    if (t.ttft_ms !== undefined) parts.push("first token " + fmtMs(t.ttft_ms));
    if (t.tokens !== undefined) parts.push(fmtNum(t.tokens) + " tokens");
    var m = el("div", "msg-meta", parts.join(" · "));
    if (t.latency_ms !== undefined && t.latency_ms > 3000) m.classList.add("slow");
    return m;
  }

  function bubble(t, conv) {
    var who = t.role === "user" ? "Customer" : (t.role === "agent" ? "Agent" : "Tool" + (t.name ? " · " + t.name : ""));
    var wrap = el("div", "msg " + t.role);
    wrap.appendChild(el("div", "msg-who", who));
    // Tool calls happen before the reply that uses them: show them first.
    if (t.tools) {
      var tools = el("div", "tools");
      t.tools.forEach(function (tc) { tools.appendChild(toolCall(tc)); });
      wrap.appendChild(tools);
    }
    if (t.content) wrap.appendChild(el("div", "msg-bubble", t.content));
    else if (t.role === "agent" && !(t.tools && t.tools.length) && !t.error) wrap.appendChild(el("div", "msg-bubble empty", "(no text)"));
    if (t.error) wrap.appendChild(el("div", "msg-error", "Agent error: " + t.error));
    if (t.role === "agent") wrap.appendChild(agentMeta(t));
    return wrap;
  }

  function handoffMarker(h) {
    var parts = ["Handed off to a human"];
    if (h.ticket_id) parts.push("ticket " + h.ticket_id);
    if (h.reason) parts.push(h.reason);
    return el("div", "handoff", parts.join(" · "));
  }

  /* Render one conversation into `root`: a verdict summary, then the chat with each
   * turn-level verdict shown right after the exchange it points at. */
  function renderConversation(root, conv) {
    root.replaceChildren();
    var failing = conv.verdicts.filter(function (v) { return v.passed === false || v.error; });

    function scrollToTurn(n) {
      var target = root.querySelector('[data-exchange="' + Number(n) + '"]');
      if (target) target.scrollIntoView({ block: "center", behavior: "smooth" });
    }

    if (conv.error) root.appendChild(el("div", "conv-error", "Conversation error: " + conv.error));

    // Failed checks in full; the others folded behind a one-line count.
    var vs = el("section", "verdicts");
    vs.appendChild(el("h3", null, "Checks (" + conv.verdicts.length + ")"));
    if (!conv.verdicts.length) vs.appendChild(el("div", "muted", "No judge ran on this conversation."));
    failing.forEach(function (v) { vs.appendChild(verdictLine(v, { onTurn: scrollToTurn })); });
    var rest = conv.verdicts.filter(function (v) { return failing.indexOf(v) < 0; });
    if (rest.length) {
      var counts = {};
      rest.forEach(function (v) { var k = verdictState(v); counts[k] = (counts[k] || 0) + 1; });
      var words = { pass: "passed", skipped: "skipped", info: "scores and labels" };
      var label = Object.keys(words).filter(function (k) { return counts[k]; })
        .map(function (k) { return counts[k] + " " + words[k]; }).join(" · ");
      var more = el("details", "more-verdicts");
      more.appendChild(el("summary", null, (failing.length ? "" : "No check failed: ") + label));
      rest.forEach(function (v) { more.appendChild(verdictLine(v, { onTurn: scrollToTurn })); });
      vs.appendChild(more);
    }
    root.appendChild(vs);

    var chat = el("section", "chat ch-" + channelClass(conv.channel));
    chat.appendChild(el("div", "chat-channel", channelLabel(conv.channel)));
    var byTurn = new Map();
    conv.verdicts.forEach(function (v) {
      if (v.turn === undefined) return;
      if (!byTurn.has(v.turn)) byTurn.set(v.turn, []);
      byTurn.get(v.turn).push(v);
    });
    var lastExchange = 0;
    conv.turns.forEach(function (t) { lastExchange = Math.max(lastExchange, t.x); });

    var group = null;
    function flush(x) {
      if (group === null) return;
      var here = byTurn.get(x) || [];
      // A verdict pointing past the last exchange is shown after the last one.
      if (x === lastExchange) {
        byTurn.forEach(function (vlist, k) { if (k > lastExchange) here = here.concat(vlist); });
      }
      here.forEach(function (v) {
        var state = verdictState(v);
        var mark = verdictLine(v);
        mark.classList.add("at-turn");
        if (state === "fail" || state === "error") mark.classList.add("at-turn-fail");
        group.appendChild(mark);
      });
      chat.appendChild(group);
      group = null;
    }
    var current = -1;
    conv.turns.forEach(function (t) {
      if (t.x !== current) {
        flush(current);
        current = t.x;
        group = el("div", "exchange");
        group.dataset.exchange = String(t.x);
        if (t.x > 0) group.appendChild(el("div", "exchange-no", "Turn " + t.x));
      }
      group.appendChild(bubble(t, conv));
      if (t.handoff) group.appendChild(handoffMarker(t.handoff));
    });
    flush(current);
    if (!conv.turns.length) chat.appendChild(el("div", "muted", "This conversation has no turns."));
    var end = el("div", "chat-end", "Ended: " + outcomeLabel(conv.outcome) + " (" + conv.stop_reason + ")");
    chat.appendChild(end);
    root.appendChild(chat);

    if (conv.end_state) {
      var es = el("details", "end-state");
      es.appendChild(el("summary", null, "Agent end state"));
      es.appendChild(el("pre", "tool-pre", pretty(conv.end_state)));
      root.appendChild(es);
    }
    return failing;
  }

  function convMeta(conv) {
    var parts = [];
    if (conv.variant && conv.variant !== "default") parts.push("variant " + conv.variant);
    parts.push("trial " + conv.trial);
    parts.push(channelLabel(conv.channel));
    parts.push(outcomeLabel(conv.outcome));
    if (conv.metrics && typeof conv.metrics.csat_proxy === "number") parts.push("CSAT " + conv.metrics.csat_proxy.toFixed(2));
    if (conv.duration_ms !== undefined) parts.push(fmtMs(conv.duration_ms));
    return parts.join(" · ");
  }

  /* Start plotly.js (kept as inert text in #evalkit-plotly) once the page has painted, then
   * draw. Its inline script is allowed by the page's CSP hash like every other script. */
  function startCharts(draw, needPlotly) {
    var src = document.getElementById("evalkit-plotly");
    function done() {
      try {
        draw();
      } catch (err) {
        console.error("evalkit: a chart could not be drawn:", err);
      }
      if (window.evalkitReport) window.evalkitReport.chartsAt = performance.now();
      document.documentElement.dataset.charts = "1";
    }
    if (!src || !needPlotly || typeof Plotly !== "undefined") return done();
    requestAnimationFrame(function () {
      setTimeout(function () {
        var s = document.createElement("script");
        s.textContent = src.textContent;
        document.body.appendChild(s);
        src.remove();
        done();
      }, 0);
    });
  }

  return {
    startCharts: startCharts,
    el: el, readJSON: readJSON, fmtMs: fmtMs, fmtNum: fmtNum, statusBadge: statusBadge,
    channelClass: channelClass, channelLabel: channelLabel, outcomeLabel: outcomeLabel,
    TranscriptStore: TranscriptStore, renderConversation: renderConversation, convMeta: convMeta,
    verdictLine: verdictLine
  };
})();
