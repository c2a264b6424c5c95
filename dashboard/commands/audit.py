"""`python app.py admin signins|log`: the sign-in log and the admin change log over a range of days, on screen or as CSV."""

from __future__ import annotations

import json
from datetime import date

import click

from dashboard.audit_exports import ADMIN_LOG_COLUMNS, SIGNIN_COLUMNS, admin_log_rows, signin_rows, to_csv
from dashboard.commands import command_store
from dashboard.settings import Settings
from data.accounts import signins
from data.accounts.admin.audit import ENTITIES


def _day(_ctx, _param, value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise click.BadParameter("a day is YYYY-MM-DD") from None


def range_options(command):
    """--since/--until (the city's days, both included) and --csv FILE (every row of the range; - for standard output)."""
    for option in reversed(
        (
            click.option("--since", callback=_day, default=None, metavar="YYYY-MM-DD", help="From this day (city time)."),
            click.option("--until", callback=_day, default=None, metavar="YYYY-MM-DD", help="To this day, included."),
            click.option(
                "--csv", "csv_path", default=None, type=click.Path(dir_okay=False, allow_dash=True), help="Write CSV to FILE."
            ),
            click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 5000), help="Rows on screen."),
        )
    ):
        command = option(command)
    return command


def _read(rows_of):
    from data import store

    tz = Settings.from_env().timezone
    with command_store() as engine, store.reading(engine) as conn:
        return rows_of(conn, tz)


def _write_csv(path: str, text: str) -> None:
    if path == "-":
        click.echo(text, nl=False)
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    click.echo(f"wrote {text.count(chr(10)) - 1} rows to {path}", err=True)


@click.command("signins")
@click.option("--outcome", default=None, type=click.Choice(signins.OUTCOMES))
@range_options
def signins_command(outcome, since, until, csv_path, limit) -> None:
    """The sign-in log, newest first: sign-ins, failures, throttled and rate-limited attempts, sign-outs, kiosk links."""
    rows = _read(lambda conn, tz: signin_rows(conn, since, until, tz, outcome=outcome, limit=None if csv_path else limit))
    if csv_path:
        _write_csv(csv_path, to_csv(SIGNIN_COLUMNS, rows))
        return
    for e in rows:
        account = f" [{e['account']}]" if e["account"] and e["account"] != e["username"] else ""
        click.echo(f"#{e['id']} {e['at']} {e['outcome']} {e['username']!r}{account} from {e['address']} ({e['user_agent']})")


@click.command("log")
@click.option("--entity", default=None, type=click.Choice(ENTITIES))
@click.option("--key", "entity_key", default=None, help="Only changes of this code / name.")
@range_options
def log_command(entity, entity_key, since, until, csv_path, limit) -> None:
    """The admin audit log, newest first: when, who, what, before -> after."""
    rows = _read(
        lambda conn, tz: admin_log_rows(
            conn, since, until, tz, entity=entity, entity_key=entity_key, limit=None if csv_path else limit
        )
    )
    if csv_path:
        _write_csv(csv_path, to_csv(ADMIN_LOG_COLUMNS, rows))
        return
    for e in rows:
        note = f" ({e['note']})" if e["note"] else ""
        before, after = e["before"] or json.dumps(None), e["after"] or json.dumps(None)
        click.echo(f"#{e['id']} {e['at']} {e['actor']} {e['entity']} {e['entity_key']} {e['action']}{note}: {before} -> {after}")
