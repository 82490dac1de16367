"""How metric values are written in text reports (Markdown, gate table, JUnit)."""

from __future__ import annotations

from evalkit.metrics.summary import MetricValue, find_metric

__all__ = ["metric_kind", "fmt_value", "fmt_metric", "fmt_delta", "fmt_p", "md_escape"]


# A registry unit -> how its values are written.
_KIND_OF_UNIT = {"share": "rate", "ms": "ms", "US$": "usd", "score 1–5": "csat", "conversations": "count", "tokens": "count"}


def metric_kind(name: str) -> str:
    """``rate``, ``ms``, ``usd``, ``csat``, ``count`` or ``number``, from the metric's unit in
    the registry (``number`` for a name it does not know)."""
    m = find_metric(name)
    return "number" if m is None else _KIND_OF_UNIT.get(m.unit, "number")


def fmt_value(name: str, value: float | None) -> str:
    """One number in the metric's own unit: ``82.5%``, ``1,240 ms``, ``$0.0123``, ``4.12``."""
    if value is None:
        return "n/a"
    kind = metric_kind(name)
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "ms":
        return f"{value:,.0f} ms"
    if kind == "usd":
        return f"${value:,.4f}"
    if kind == "csat":
        return f"{value:.2f}"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_metric(name: str, mv: MetricValue | None, *, cost_note: str | None = None) -> str:
    """``82.5% [74.1%, 88.9%]``; the cost note instead of n/a for unmeasured cost."""
    if mv is None or mv.value is None:
        if metric_kind(name) == "usd" and cost_note:
            return f"n/a ({cost_note})"
        return "n/a"
    if mv.ci_low is None or mv.ci_high is None:
        return fmt_value(name, mv.value)
    return f"{fmt_value(name, mv.value)} [{fmt_value(name, mv.ci_low)}, {fmt_value(name, mv.ci_high)}]"


def fmt_delta(name: str, value: float | None) -> str:
    """A signed difference: ``+4.2 pp`` for rates, ``-120 ms``, ``+0.31``."""
    if value is None:
        return "n/a"
    kind = metric_kind(name)
    # Round to the shown precision first so a tiny negative never prints as "-0".
    if kind == "rate":
        return f"{round(value * 100, 1) + 0.0:+.1f} pp"
    if kind == "ms":
        return f"{round(value) + 0.0:+,.0f} ms"
    if kind == "usd":
        v = round(value, 4) + 0.0
        return f"{'+' if v >= 0 else '-'}${abs(v):,.4f}"
    if kind == "count":
        return f"{round(value) + 0.0:+,.0f}"
    return f"{round(value, 2) + 0.0:+.2f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def md_escape(text: str, limit: int | None = 200) -> str:
    """Text safe inside a Markdown table cell or list item (one line, no HTML, no pipes)."""
    one = " ".join(str(text).split())
    if limit is not None and len(one) > limit:
        one = one[: limit - 1] + "…"
    # Brackets and "!" too: a transcript's ``![x](https://...)`` must not become a live image
    # or link (a tracking pixel in a pull-request comment).
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`"), ("*", "\\*"),
                    ("_", "\\_"), ("[", "\\["), ("]", "\\]"), ("!", "\\!")):
        one = one.replace(ch, rep)
    return one
