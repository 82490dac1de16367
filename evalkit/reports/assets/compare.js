/* evalkit comparison page: opening a flipped scenario renders both transcripts side by side.
 * Transcript text goes in with textContent only (see transcript.js). */
"use strict";

(function () {
  var el = EK.el;
  var data = EK.readJSON("evalkit-compare");
  var store = new EK.TranscriptStore("evalkit-transcripts");

  async function fill(side, index) {
    var root = side.querySelector(".flip-conv");
    if (index === null || index === undefined) {
      root.replaceChildren(el("div", "muted", "This conversation is not in its run folder."));
      return;
    }
    var conv;
    try {
      conv = await store.get(index);
    } catch (err) {
      root.replaceChildren(el("div", "conv-error", "This transcript cannot be shown: " + err));
      return;
    }
    var meta = el("div", "drawer-meta");
    meta.appendChild(EK.statusBadge(conv.passed, conv.outcome === "error"));
    meta.appendChild(el("span", null, " " + EK.convMeta(conv)));
    var body = el("div");
    EK.renderConversation(body, conv);
    root.replaceChildren(meta, body);
  }

  async function open(details) {
    if (details.dataset.loaded) return;
    var flip = data.flips[Number(details.dataset.flip)];
    var sides = details.querySelectorAll(".flip-side");
    await Promise.all([fill(sides[0], flip.base), fill(sides[1], flip.cand)]);
    details.dataset.loaded = "1";
  }

  document.querySelectorAll("details.flip").forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open) open(d); });
  });
  var m = /^#flip-(\d+)$/.exec(location.hash);
  if (m) {
    var target = document.getElementById("flip-" + Number(m[1]));
    if (target) { target.open = true; target.scrollIntoView(); }
  }
  window.evalkitCompare = { open: open };
  document.documentElement.dataset.ready = "1";
})();
