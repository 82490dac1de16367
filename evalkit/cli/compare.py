"""``evalkit compare``: base vs candidate (two run folders, or two variants of one run)."""

from __future__ import annotations

from pathlib import Path

import click

from evalkit.core._plural import plural
from evalkit.core.errors import ConfigError

__all__ = ["command"]

_FORMATS = ("html", "md", "json")
_SUFFIX = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def _render(fmt: str, cmp, base_run, cand_run) -> str:  # type: ignore[no-untyped-def]
    from evalkit.metrics.compare import render_comparison_markdown

    if fmt == "json":
        return cmp.model_dump_json(indent=2) + "\n"
    if fmt == "md":
        return render_comparison_markdown(cmp)
    try:
        from evalkit.reports.compare_html import render_comparison_html
    except ImportError:
        raise ConfigError("the HTML comparison report is not available in this install; use --format md or json",
                          field="--format") from None
    return render_comparison_html(cmp, base_run, cand_run)


def _write_text(path: Path, text: str) -> None:
    """Atomically (temp file + rename): a crash never leaves half a comparison behind."""
    from evalkit.core.files import atomic_write

    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))


@click.command("compare")
@click.argument("base_dir", metavar="BASE", type=click.Path(path_type=Path))
@click.argument("cand_dir", metavar="[CANDIDATE]", required=False, type=click.Path(path_type=Path))
@click.option("--variants", default=None, metavar="A,B", help="Compare two variants inside the one run folder BASE (base first).")
@click.option("--base-variant", default=None, metavar="NAME", help="Variant of BASE (when it has several).")
@click.option("--cand-variant", default=None, metavar="NAME", help="Variant of CANDIDATE (when it has several).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None, metavar="FILE|DIR",
              help="Write the comparison here (a folder gets comparison.html, .md and .json); default: Markdown on stdout.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default=None,
              help="Output format (default: from the --out suffix, else md).")
@click.option("--resamples", type=click.IntRange(100, 100_000), default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--slow-turn-ms", type=click.FloatRange(min=0, min_open=True), default=3000.0, show_default=True)
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when a scenario regressed or a metric got significantly worse.")
def command(
    base_dir: Path,
    cand_dir: Path | None,
    variants: str | None,
    base_variant: str | None,
    cand_variant: str | None,
    out: Path | None,
    fmt: str | None,
    resamples: int,
    seed: int,
    slow_turn_ms: float,
    fail_on_regression: bool,
) -> int:
    """Compare CANDIDATE against BASE: metric deltas with 95% CIs, paired tests, flipped scenarios.

    \b
    Examples:
      evalkit compare runs/main runs/pr --out comparison.html
      evalkit compare runs/ab --variants A,B --out runs/ab/compare/
      evalkit compare runs/main runs/pr --format json > comparison.json
    """
    from evalkit.metrics.compare import compare_runs
    from evalkit.run.runfiles import load_run, write_json

    if variants is not None:
        if cand_dir is not None:
            raise ConfigError("--variants compares two variants of ONE run: give a single run folder", field="--variants")
        if base_variant or cand_variant:
            raise ConfigError("give --variants A,B or --base-variant/--cand-variant, not both", field="--variants")
        names = [v.strip() for v in variants.split(",")]
        if len(names) != 2 or not all(names):
            raise ConfigError(f"expected two variant names like A,B, got '{variants}'", field="--variants")
        base_variant, cand_variant = names
    elif cand_dir is None:
        raise ConfigError("give BASE and CANDIDATE run folders, or RUN --variants A,B", field="CANDIDATE")

    base_run = load_run(base_dir)
    cand_run = base_run if cand_dir is None else load_run(cand_dir)
    cmp = compare_runs(
        base_run,
        cand_run,
        base_variant=base_variant,
        cand_variant=cand_variant,
        n_resamples=resamples,
        seed=seed,
        slow_turn_ms=slow_turn_ms,
        base_path=str(base_dir),
        cand_path=str(cand_dir or base_dir),
    )

    if out is None:
        click.echo(_render(fmt or "md", cmp, base_run, cand_run), nl=False)
    elif out.is_dir() or (not out.suffix and fmt is None):
        if out.exists() and not out.is_dir():
            raise ConfigError(f"'{out}' is a file, not a folder: give a folder, or a file name ending "
                              ".html, .md or .json (or --format)", field="--out")
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "comparison.json", cmp.model_dump(mode="json"))
        written = [out / "comparison.json"]
        for f in ("md", "html"):
            try:
                text = _render(f, cmp, base_run, cand_run)
            except ConfigError as exc:
                click.echo(f"evalkit: warning: {exc}", err=True)
                continue
            _write_text(out / f"comparison.{f}", text)
            written.append(out / f"comparison.{f}")
        click.echo("wrote " + ", ".join(str(p) for p in written))
    else:
        chosen = fmt or _SUFFIX.get(out.suffix.lower())
        if chosen is None:
            raise ConfigError(f"cannot tell the format from '{out.name}': add --format {'|'.join(_FORMATS)}", field="--out")
        text = _render(chosen, cmp, base_run, cand_run)
        _write_text(out, text)
        click.echo(f"wrote {out}")

    if out is not None:
        worse = [m.metric for m in cmp.metrics if m.verdict == "worse"]
        base_label, cand_label = cmp.labels()
        click.echo(
            f"{base_label} -> {cand_label}: {plural(len(cmp.regressions), 'regression')}, "
            f"{plural(len(cmp.fixes), 'fix', 'fixes')}; "
            f"significantly worse: {', '.join(worse) or 'none'}"
        )
    if fail_on_regression and (cmp.regressions or any(m.verdict == "worse" for m in cmp.metrics)):
        return 1
    return 0
