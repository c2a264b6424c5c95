"""Commands of the leaders' review roll-up: bring it up to date, or build it again from every incident."""

from __future__ import annotations

import time

import click

from dashboard.commands import command_store
from dashboard.settings import Settings


@click.group("rollup")
def rollup() -> None:
    """The trends roll-up (daily sums the /trends review reads; see README "Trends")."""


@rollup.command("refresh")
def rollup_refresh() -> None:
    """Apply the changes since the last refresh (builds the roll-up when there is none)."""
    from data.metrics import rollups

    started = time.perf_counter()
    with command_store() as engine, engine.begin() as conn:
        done = rollups.refresh(conn, Settings.from_env().timezone)
    what = "built from" if done["rebuilt"] else "refreshed with"
    click.echo(f"roll-up {what} {done['incidents']} incident(s) in {time.perf_counter() - started:.1f} s")


@rollup.command("rebuild")
def rollup_rebuild() -> None:
    """Build the roll-up again from every incident."""
    from data.metrics import rollups

    started = time.perf_counter()
    with command_store() as engine, engine.begin() as conn:
        count = rollups.rebuild(conn, Settings.from_env().timezone)
    click.echo(f"roll-up built from {count} incident(s) in {time.perf_counter() - started:.1f} s")


COMMANDS = [rollup]
