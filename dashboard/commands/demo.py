"""`python app.py demo` builds the demo city of Chongqing; `python app.py simulate` keeps it alive in the foreground."""

from __future__ import annotations

import click

from dashboard.commands import command_store
from dashboard.settings import Settings


@click.command("demo")
@click.option(
    "--grids", default=5000, show_default=True, type=int, help="Grids in the city (62000 is Chongqing's full '141' scale)."
)
@click.option("--days", default=90, show_default=True, type=float, help="Days of incident history up to now.")
@click.option("--per-day", default=1500, show_default=True, type=float, help="Average incidents reported a day.")
@click.option("--seed", default=7, show_default=True, type=int, help="The same seed builds the same city.")
def demo(grids: int, days: float, per_day: float, seed: int) -> None:
    """Build the demo city (Chongqing's nine central districts) with its history, REPLACING all units and incidents."""
    from data.demo.city import build_demo

    click.echo(f"building the demo city: {grids:,} grids, {days:g} days x {per_day:g} incidents a day (seed {seed})...")
    with command_store() as engine:
        report = build_demo(engine, grids=grids, days=days, per_day=per_day, seed=seed)
    for line in report.summary_lines():
        click.echo(line)


@click.command("simulate")
@click.option("--minutes", default=10.0, show_default=True, type=float, help="How long to run, in minutes of wall time.")
@click.option("--speed", default=1.0, show_default=True, type=float, help="How much busier than real life (times stay real).")
def simulate(minutes: float, speed: float) -> None:
    """Run the live incident simulator in the foreground, printing what each tick does."""
    from data.demo.simulator import simulate as run

    if minutes <= 0 or speed <= 0:
        raise click.ClickException("--minutes and --speed must be positive")
    settings = Settings.from_env()
    with command_store() as engine:
        total = run(engine, minutes, speed, timezone=settings.timezone, echo=click.echo)
    actions = ", ".join(f"{n} {a}" for a, n in sorted(total.actions.items())) or "no actions"
    click.echo(f"done: {total.reported} reported; {actions}")


COMMANDS = [demo, simulate]
