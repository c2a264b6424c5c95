"""`python app.py detect-warnings` runs one early-warning pass; `inject-warnings` puts known cases into the demo."""

from __future__ import annotations

import click

from dashboard.commands import command_store
from dashboard.settings import Settings

KINDS = ("surge", "hotspot", "chronic", "deadline")


@click.command("detect-warnings")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only these kinds (repeatable); default all.")
def detect_warnings(kinds: tuple[str, ...]) -> None:
    """Run one early-warning pass now (surges, new hotspots, chronic places, deadlines) and store its alerts."""
    from data.warnings.detect import run_detection, summary_line

    with command_store() as engine:
        summary = run_detection(engine, kinds=kinds or None, tz=Settings.from_env().timezone)
    click.echo(summary_line(summary))
    click.echo("timings: " + ", ".join(f"{k} {v}" for k, v in summary["timings"].items()))


@click.command("inject-warnings")
@click.option("--surges", default=3, show_default=True, type=click.IntRange(0, 50), help="Surges: 8 reports in one grid in 3 h.")
@click.option(
    "--hotspots", default=3, show_default=True, type=click.IntRange(0, 50), help="Hotspots: 20 reports over 7 grids in 3 days."
)
@click.option(
    "--chronic", default=3, show_default=True, type=click.IntRange(0, 50), help="Chronic spots: 6 closed reports on 6 days."
)
@click.option("--seed", default=11, show_default=True, type=int, help="The same seed picks the same places.")
@click.option("--detect/--no-detect", default=True, show_default=True, help="Run a detection pass afterwards and score it.")
def inject_warnings_command(surges: int, hotspots: int, chronic: int, seed: int, detect: bool) -> None:
    """Inject known early-warning cases into the store (as ordinary reports) and show whether a pass finds them."""
    from data.demo.inject import inject_warnings, score_alerts
    from data.store import reading
    from data.warnings import alerts as warnings
    from data.warnings.detect import run_detection, summary_line

    with command_store() as engine:
        cases = inject_warnings(engine, surges=surges, hotspots=hotspots, chronic=chronic, seed=seed)
        for case in cases:
            click.echo(f"injected {case.kind}: {case.reports} reports, category {case.category_id}, grids {case.grid_ids}")
        if not detect:
            return
        summary = run_detection(engine, tz=Settings.from_env().timezone)
        click.echo(summary_line(summary))
        with reading(engine) as conn:
            alerts = warnings.list_alerts(conn, statuses=("open", "acknowledged"), limit=100_000)
    scores = score_alerts(alerts, cases)
    for kind, s in scores["kinds"].items():
        click.echo(f"{kind}: found {s['found']} of {s['cases']} injected")


COMMANDS = [detect_warnings, inject_warnings_command]
