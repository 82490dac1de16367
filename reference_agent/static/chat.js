// AcmeCorp support chat: talks to this service's /v1/sessions API with SSE streaming.
// Agent text is rendered as a small, safe Markdown subset by building DOM nodes
// (never innerHTML), so nothing in a reply can inject markup or script.
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);
  const log = $("#log"), form = $("#composer"), input = $("#input"), send = $("#send");
  const channelSel = $("#channel"), emailInput = $("#email"), statusEl = $("#status"), sessionEl = $("#session");
  // The session's token: the server sends it with the first reply; every later call sends it back.
  let sessionId = newSessionId(), sessionToken = null, turn = 0, busy = false;
  function withToken(headers) { if (sessionToken) headers["Session-Token"] = sessionToken; return headers; }

  function newSessionId() {
    const rnd = (window.crypto && crypto.getRandomValues)
      ? Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")
      : String(Math.random()).slice(2, 18);
    return "web-" + rnd;
  }
  function showSession() { sessionEl.textContent = "session " + sessionId; }
  function setStatus(text) { statusEl.textContent = text || ""; }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- safe Markdown (subset): paragraphs, lists, **bold**, *italic*/_italic_, `code`, links
  const INLINE = /(\*\*[^*\n]+\*\*|`[^`\n]+`|\[[^\]\n]+\]\((?:https?:\/\/|mailto:)[^\s)]+\)|<(?:https?:\/\/)[^\s|>]+(?:\|[^>\n]+)?>|(?:https?:\/\/)[^\s<>()]+[^\s<>().,;:!?'"]|\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)/g;
  function inline(parent, text) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const t = m[0];
      let node;
      if (t.startsWith("**")) { node = el("strong"); inline(node, t.slice(2, -2)); }
      else if (t.startsWith("`")) { node = el("code", null, t.slice(1, -1)); }
      else if (t.startsWith("[")) {
        const close = t.indexOf("](");
        node = link(t.slice(close + 2, -1), t.slice(1, close));
      } else if (t.startsWith("<")) {            // Slack mrkdwn <url|text>
        const body = t.slice(1, -1), bar = body.indexOf("|");
        node = bar < 0 ? link(body, body) : link(body.slice(0, bar), body.slice(bar + 1));
      } else if (t.startsWith("http")) { node = link(t, t); }
      else { node = el("em"); inline(node, t.slice(1, -1)); }
      parent.appendChild(node);
      last = m.index + t.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function link(href, label) {
    if (!/^(https?:\/\/|mailto:)/i.test(href)) return document.createTextNode(label);
    const a = el("a", null, label);
    a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
    return a;
  }
  function renderMarkdown(target, text) {
    target.textContent = "";
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let para = null, list = null;
    const flush = () => { para = null; list = null; };
    for (const raw of lines) {
      const line = raw.replace(/\s+$/, "");
      if (!line.trim()) { flush(); continue; }
      const bullet = /^\s*(?:[-*\u2022])\s+(.*)$/.exec(line);
      const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        const kind = bullet ? "UL" : "OL";
        if (!list || list.tagName !== kind) { list = el(kind.toLowerCase()); target.appendChild(list); para = null; }
        const li = el("li"); inline(li, (bullet || numbered)[1]); list.appendChild(li);
        continue;
      }
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      list = null;
      if (!para) { para = el("p"); target.appendChild(para); }
      else para.appendChild(el("br"));
      if (heading) { const s = el("strong"); inline(s, heading[1]); para.appendChild(s); }
      else inline(para, line);
    }
  }

  // ---- conversation
  function addUser(text) {
    const wrap = el("div", "msg user");
    wrap.appendChild(el("div", "bubble", text));
    log.appendChild(wrap); scroll();
  }
  function addAgent() {
    const wrap = el("div", "msg agent");
    const bubble = el("div", "bubble streaming");
    bubble.dataset.state = "streaming";
    wrap.appendChild(bubble);
    log.appendChild(wrap); scroll();
    return { wrap, bubble, streamed: "" };
  }
  function finishAgent(view, reply) {
    const { wrap, bubble } = view;
    bubble.classList.remove("streaming");
    // A reply the channel split (WhatsApp) is shown as the separate messages it would be.
    const meta0 = reply.metadata || {};
    const parts = Array.isArray(meta0.messages) && meta0.messages.length > 1 ? meta0.messages : [reply.content || ""];
    renderMarkdown(bubble, parts[0]);
    for (const extra of parts.slice(1)) {
      const more = el("div", "bubble");
      renderMarkdown(more, extra);
      wrap.appendChild(more);
    }
    bubble.dataset.state = "done";
    if (reply.handoff) {
      const ticket = reply.handoff.ticket_id ? " Ticket " + reply.handoff.ticket_id + "." : "";
      const why = reply.handoff.reason ? " (" + reply.handoff.reason + ")" : "";
      wrap.appendChild(el("div", "notice handoff", "Handed over to a human colleague" + why + "." + ticket));
    }
    const meta = el("div", "meta");
    for (const call of reply.tool_calls || []) {
      const tag = el("span", "tool", call.name + (call.error ? " \u2717" : ""));
      tag.title = JSON.stringify(call.arguments || {});
      meta.appendChild(tag);
    }
    meta.appendChild(feedbackButtons(meta));
    wrap.appendChild(meta);
    if (reply.end_conversation) setStatus("The agent closed this conversation. Start a new chat to continue.");
    scroll();
  }
  function failAgent(view, message) {
    view.bubble.classList.remove("streaming");
    view.bubble.dataset.state = "error";
    if (!view.streamed) view.bubble.textContent = "(no reply)";
    view.wrap.appendChild(el("div", "notice error", message));
    scroll();
  }

  function feedbackButtons() {
    const box = el("span", "feedback");
    const up = el("button", "fb up", "\u25B2 Helpful"), down = el("button", "fb down", "\u25BC Not helpful");
    up.type = down.type = "button";
    up.title = "Helpful"; down.title = "Not helpful";
    up.setAttribute("aria-label", "Helpful"); down.setAttribute("aria-label", "Not helpful");
    const done = (btn, note) => {
      up.disabled = down.disabled = true; btn.classList.add("chosen");
      box.appendChild(el("span", "thanks", note));
    };
    up.addEventListener("click", () => sendFeedback("up", "").then((ok) => done(up, ok ? " Thanks!" : " Could not save.")));
    down.addEventListener("click", () => {
      up.disabled = down.disabled = true; down.classList.add("chosen");
      const c = el("input", "comment"); c.placeholder = "What went wrong? (optional)"; c.maxLength = 2000;
      const b = el("button", "fb", "Send"); b.type = "button";
      const submit = () => sendFeedback("down", c.value).then((ok) => {
        c.remove(); b.remove(); box.appendChild(el("span", "thanks", ok ? " Thanks for telling us." : " Could not save."));
      });
      b.addEventListener("click", submit);
      c.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); submit(); } });
      box.append(" ", c, " ", b); c.focus();
    });
    box.append(up, " ", down);
    return box;
  }
  async function sendFeedback(rating, comment) {
    try {
      const r = await fetch("/v1/sessions/" + encodeURIComponent(sessionId) + "/feedback", {
        method: "POST", headers: withToken({ "Content-Type": "application/json" }),
        body: JSON.stringify({ rating, comment }),
      });
      return r.ok;
    } catch (e) { return false; }
  }

  async function errorText(resp) {
    try { const j = await resp.json(); return j.error || ("HTTP " + resp.status); }
    catch (e) { return "HTTP " + resp.status; }
  }

  async function sendMessage(text) {
    busy = true; send.disabled = true; setStatus("Agent is typing\u2026");
    addUser(text);
    const view = addAgent();
    turn += 1;
    const email = emailInput.value.trim();
    const body = {
      message: text, turn, channel: channelSel.value,
      customer: email ? { email } : null, initial_state: null, stream: true,
    };
    try {
      const resp = await fetch("/v1/sessions/" + encodeURIComponent(sessionId) + "/messages", {
        method: "POST", headers: withToken({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
        body: JSON.stringify(body),
      });
      sessionToken = resp.headers.get("Session-Token") || sessionToken;
      if (!resp.ok) { failAgent(view, await errorText(resp)); return; }
      const reader = resp.body.getReader(), decoder = new TextDecoder();
      let buf = "", gotReply = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let event = "message"; const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          let payload = {};
          try { payload = JSON.parse(data.join("\n") || "{}"); } catch (e) { continue; }
          if (event === "token") { view.streamed += payload.text || ""; view.bubble.textContent = view.streamed; scroll(); }
          else if (event === "reply") { gotReply = true; finishAgent(view, payload); }
          else if (event === "error") { gotReply = true; failAgent(view, payload.message || "agent error"); }
        }
      }
      if (!gotReply) failAgent(view, "The connection closed before the reply was complete.");
    } catch (e) {
      failAgent(view, "Network error: " + e.message);
    } finally {
      busy = false; send.disabled = false; input.focus();
      if (!statusEl.textContent.startsWith("The agent closed")) setStatus("");
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = ""; autosize();
    sendMessage(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  function autosize() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 160) + "px"; }
  input.addEventListener("input", autosize);
  function resetChat() {
    if (sessionToken) {
      fetch("/v1/sessions/" + encodeURIComponent(sessionId), { method: "DELETE", headers: withToken({}) }).catch(() => {});
    }
    sessionId = newSessionId(); sessionToken = null; turn = 0; showSession(); setStatus("");
    for (const node of Array.from(log.querySelectorAll(".msg:not(.intro)"))) node.remove();
    input.focus();
  }
  $("#reset").addEventListener("click", resetChat);
  // The channel and identity are fixed per session, so changing them starts a new chat.
  channelSel.addEventListener("change", () => { if (turn) resetChat(); });
  emailInput.addEventListener("change", () => { if (turn) resetChat(); });
  window.acmeChat = { renderMarkdown, get sessionId() { return sessionId; }, get sessionToken() { return sessionToken; } };
  showSession();
  input.focus();
})();
