"""Commands for API keys: `python app.py api-key create|list|revoke`."""

from __future__ import annotations

import click

from dashboard.commands import command_store
from dashboard.commands.admin import actor_option, cli_actor


@click.group("api-key")
def api_key() -> None:
    """Create, list and revoke API keys of the intake API (only their hashes are stored)."""


@api_key.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. 12345-hotline or cg-dispatch (unique).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["intake", "actions", "read"]),
    help="What it may do (repeatable): intake = report incidents, actions = a department's actions, read = lists, feed, KPIs.",
)
@click.option("--source", help="Channel its reports are stored under (intake keys; default: the name).")
@click.option("--department", "department_code", help="Department code an actions key acts for (required with --scope actions).")
@click.option("--rate-limit", help="Its own rate limit, e.g. '600/minute' (default: the API's).")
@click.option(
    "--unit",
    "unit_code",
    help="Code of the district, street, community or grid it is limited to: what it reads, reports and acts on "
    "(default: the whole city).",
)
@actor_option
def create(
    name: str,
    scopes: tuple[str, ...],
    source: str | None,
    department_code: str | None,
    rate_limit: str | None,
    unit_code: str | None,
    actor: str | None,
) -> None:
    """Create a key and print it once: it cannot be shown again (the creation is audited, never the key)."""
    from data.accounts.admin.keys import create_api_key

    with command_store() as engine, engine.begin() as conn:
        new = create_api_key(
            conn,
            cli_actor(actor),
            name,
            scopes,
            source=source,
            department_code=department_code,
            rate_limit=rate_limit,
            unit_code=unit_code,
        )
    key = new.key
    click.echo(
        f"created API key {key.id} {key.name!r}: scopes {' '.join(sorted(key.scopes))}, unit {key.unit_code or 'the whole city'}",
        err=True,
    )
    click.echo("store it now; it is shown only this once:", err=True)
    click.echo(new.secret)


@api_key.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
def list_command(show_all: bool) -> None:
    """List keys: id, name, shown prefix, scopes, source, department, unit, limit, created, revoked."""
    from data import store
    from data.accounts.apikeys import list_keys

    with command_store() as engine, store.reading(engine) as conn:
        keys = list_keys(conn, include_revoked=show_all)
    if not keys:
        click.echo("no API keys" if show_all else "no active API keys (--all shows revoked ones)")
        return
    header = ("id", "name", "key", "scopes", "source", "department", "unit", "rate limit", "created", "revoked")
    rows = [
        (
            str(k.id),
            k.name,
            k.prefix + "…",
            ",".join(sorted(k.scopes)),
            k.source or "-",
            k.department_code or "-",
            k.unit_code or "city",
            k.rate_limit or "default",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
        for k in keys
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@api_key.command("revoke")
@click.argument("key")
@actor_option
def revoke(key: str, actor: str | None) -> None:
    """Revoke KEY (its id, name or shown prefix): it stops working at once (audited)."""
    from data.accounts.admin.keys import revoke_api_key

    with command_store() as engine, engine.begin() as conn:
        revoked = revoke_api_key(conn, cli_actor(actor), key)
    click.echo(f"revoked API key {revoked.id} {revoked.name!r}")


COMMANDS = [api_key]
