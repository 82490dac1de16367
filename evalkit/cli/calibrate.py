"""``evalkit calibrate``: how often each judge agrees with people, on a team's own labels."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.command("calibrate")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--judge", "judges", multiple=True, metavar="NAME",
              help="Calibrate only this judge (repeatable; default: every judge that has labels). "
              "'passed' is all deterministic checks together, 'csat_proxy' the offline CSAT proxy.")
@click.option("--labels", "label_files", multiple=True, metavar="CSV",
              type=click.Path(path_type=Path, dir_okay=False),
              help="Human labels: a CSV with columns scenario_id,trial,judge,label[,variant] "
              "(label: pass/fail or a number). Repeatable; RUN/labels.csv is read too.")
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Where to write calibration.json and calibration.html (default: RUN).")
@click.option("--resamples", type=click.IntRange(100, 100_000), default=1000, show_default=True,
              help="Bootstrap resamples for the 95% intervals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def command(run_dir: Path, judges: tuple[str, ...], label_files: tuple[Path, ...], out: Path | None,
            resamples: int, seed: int) -> int:
    """Agreement of each judge in RUN with human labels, beside trivial baselines.

    \b
    Labels come from --labels files, RUN/labels.csv, and what imported recordings carry:
    human_csat labels llm_csat and csat_proxy, source_verdict labels 'passed'.
    Pass/fail labels: agreement, Cohen's kappa, confusion matrix, bias.
    Score labels: Spearman, quadratic-weighted kappa, mean absolute error, bias.
    Each with a bootstrap 95% interval; baselines: always the majority label, and length.

    \b
    Examples:
      evalkit import uss ../shared/data/uss/SGD.txt --out runs/sgd
      evalkit score runs/sgd && evalkit calibrate runs/sgd --judge csat_proxy
      evalkit calibrate runs/pr --labels our-labels.csv --judge goal_completion
    """
    from evalkit.core.errors import ConfigError
    from evalkit.quality.calibration import (
        CALIBRATION_FILE,
        CALIBRATION_PAGE,
        calibrate,
        format_calibration,
        judges_with_labels,
        run_labels,
    )
    from evalkit.reports.calibration_html import render_calibration_html
    from evalkit.run.runfiles import load_run
    from evalkit.run.runfolder import Existing, RunFolder

    run = load_run(run_dir)
    labels = run_labels(run_dir, run, label_files)
    if not labels:
        raise ConfigError(
            f"{run_dir} has no human labels: give --labels FILE.csv (scenario_id,trial,judge,label) "
            "or put labels.csv in the run folder", field="--labels")
    known = judges_with_labels(labels)
    for name in judges:
        if name not in known:
            raise ConfigError(f"no human label names judge '{name}' (labelled: {', '.join(known)})",
                              field="--judge")
    results = calibrate(run, labels, judges=judges, n_resamples=resamples, seed=seed)
    click.echo(format_calibration(results))
    data = {
        "run_id": run.manifest.run_id,
        "n_resamples": resamples,
        "seed": seed,
        "judges": [r.as_dict() for r in results],
    }
    html = render_calibration_html(results, run_id=run.manifest.run_id, n_resamples=resamples).encode("utf-8")
    if out is None:
        # Into the run folder: through its owner (locked, masked, never through a symlink).
        with RunFolder(run_dir).claim(Existing.update) as folder:
            folder.write_json(CALIBRATION_FILE, data)
            folder.write_file(CALIBRATION_PAGE, html)
        target = Path(run_dir)
    else:
        from evalkit.core.files import atomic_write
        from evalkit.run.runfiles import write_json

        target = Path(out)
        target.mkdir(parents=True, exist_ok=True)
        write_json(target / CALIBRATION_FILE, data)
        atomic_write(target / CALIBRATION_PAGE, lambda fh: fh.write(html))
    click.echo(f"\n(written to {target / CALIBRATION_FILE} and {target / CALIBRATION_PAGE})")
    return 0
