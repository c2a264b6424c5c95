"""Account commands: `python app.py user create|list|set-password` and `python app.py kiosk create|list|revoke`.

`user` is a short name for the audited `admin user` commands (dashboard/commands/admin.py); kiosk
links of wall displays live here.
"""

from __future__ import annotations

import click

from dashboard.commands import command_store
from dashboard.commands.admin import actor_option, cli_actor, table
from dashboard.commands.admin import user as admin_user


@click.group("user")
def user() -> None:
    """Users who sign in: create, list, set a password (the same audited commands as `admin user`)."""


for _name, _target in (("create", "create"), ("list", "list"), ("set-password", "reset-password"), ("set", "set")):
    if _target in admin_user.commands:
        user.add_command(admin_user.commands[_target], name=_name)


@click.group("kiosk")
def kiosk() -> None:
    """Read-only kiosk links for wall displays: /kiosk/<token> signs the wall in, limited to one unit."""


def _unit_id(conn, unit_code: str | None) -> int | None:
    from sqlalchemy import select

    from data import schema
    from data.errors import ValidationError

    code = (unit_code or "").strip()
    if code in ("", "city"):
        return None
    unit_id = conn.execute(select(schema.units.c.id).where(schema.units.c.code == code)).scalar()
    if unit_id is None:
        raise ValidationError(
            f"no unit with code {code!r} (see the units' codes in `python app.py admin user list` or the import)"
        )
    return unit_id


@kiosk.command("create")
@click.option("--label", required=True, help="Which display it is for, e.g. 'wall, command room 3'.")
@click.option("--unit", "unit_code", default=None, help="The unit the wall shows (a unit code; default: the whole city).")
@click.option(
    "--base-url", default="http://127.0.0.1:8050", show_default=True, help="Where the dashboard is served, for the link."
)
@actor_option
def kiosk_create(label: str, unit_code: str | None, base_url: str, actor: str | None) -> None:
    """Create a kiosk link and print it once: only its hash is stored."""
    from data.accounts import users as accounts

    with command_store() as engine, engine.begin() as conn:
        token, row = accounts.create_kiosk_token(conn, label, _unit_id(conn, unit_code), cli_actor(actor))
    click.echo(f"created kiosk token {row['id']} {row['label']!r} for {row['unit_code'] or 'the whole city'}", err=True)
    click.echo("open this link on the wall display; it is shown only this once:", err=True)
    click.echo(f"{base_url.rstrip('/')}/kiosk/{token}")


@kiosk.command("list")
def kiosk_list() -> None:
    """Every kiosk token: id, label, shown prefix, unit, created by/at, last used, revoked."""
    from data import store
    from data.accounts import users as accounts

    with command_store() as engine, store.reading(engine) as conn:
        rows = accounts.list_kiosk_tokens(conn)
    table(
        ("id", "label", "prefix", "unit", "created_by", "created", "last_used", "revoked"),
        [
            (
                r["id"],
                r["label"],
                r["prefix"] + "…",
                r["unit_code"] or "city",
                r["created_by"],
                f"{r['created_at']:%Y-%m-%d %H:%M}",
                f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else None,
                f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else None,
            )
            for r in rows
        ],
    )


@kiosk.command("revoke")
@click.argument("token_id")
def kiosk_revoke(token_id: str) -> None:
    """Revoke kiosk token TOKEN_ID (its id or shown prefix): the wall is signed out on its next request."""
    from data.accounts import users as accounts

    with command_store() as engine, engine.begin() as conn:
        row = accounts.revoke_kiosk_token(conn, token_id)
    click.echo(f"revoked kiosk token {row['id']} {row['label']!r}")


COMMANDS = [user, kiosk]
