"""Commands of the dispatch area: department webhooks and their delivery log, responsibility lists, escalation sweeps."""

from __future__ import annotations

import click

from dashboard.commands import command_store
from dashboard.commands.admin import actor_option, cli_actor


def _department_id(conn, code: str) -> int:
    from sqlalchemy import select

    from data import schema

    found = conn.execute(select(schema.departments.c.id).where(schema.departments.c.code == code)).scalar()
    if found is None:
        raise click.ClickException(f"no department with code {code!r}")
    return found


@click.group("webhook")
def webhook() -> None:
    """A department's outbound webhook (一键智达): where dispatches are posted, signed with HMAC-SHA256."""


@webhook.command("set")
@click.argument("department")
@click.argument("url")
@click.option("--secret", default=None, help="The signing secret (at least 16 characters); made up and printed when not given.")
@actor_option
def webhook_set(department: str, url: str, secret: str | None, actor: str | None) -> None:
    """Post DEPARTMENT's dispatches to URL; prints the secret its receiver checks signatures with (audited, not the secret)."""
    from data import admin, notify

    with command_store() as engine, engine.begin() as conn:
        used = admin.set_department_webhook(conn, cli_actor(actor), department, url, secret)
    click.echo(f"{department}: webhooks go to {url}")
    click.echo(f"signing secret (header {notify.SIGNATURE_HEADER}: sha256=HMAC of the body): {used}")


@webhook.command("off")
@click.argument("department")
@actor_option
def webhook_off(department: str, actor: str | None) -> None:
    """Stop posting DEPARTMENT's dispatches (its inbox still gets them)."""
    from data import admin

    with command_store() as engine, engine.begin() as conn:
        admin.set_department_webhook(conn, cli_actor(actor), department, None)
    click.echo(f"{department}: webhook off")


@webhook.command("log")
@click.option("--department", default=None, help="Only this department's deliveries.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def webhook_log(department: str | None, limit: int) -> None:
    """The delivery log: each webhook, its status and every attempt."""
    from data import notify, store

    with command_store() as engine, store.reading(engine) as conn:
        department_id = _department_id(conn, department) if department else None
        rows = notify.deliveries(conn, department_id=department_id, limit=limit)
    for r in rows:
        click.echo(
            f"#{r['id']} {r['kind']} incident {r['incident_id']} -> {r['url']}: {r['status']} after {r['attempts']} attempt(s)"
        )
        for a in r["attempts_log"]:
            outcome = a["status_code"] if a["status_code"] is not None else a["error"]
            click.echo(f"    {a['at']:%Y-%m-%d %H:%M:%S} attempt {a['attempt']}: {outcome} ({a['duration_ms']} ms)")


@click.command("responsibility")
@click.argument("category")
@click.argument("district")
@click.argument("department", required=False)
@actor_option
def responsibility(category: str, district: str, department: str | None, actor: str | None) -> None:
    """Name the DEPARTMENT that handles CATEGORY in DISTRICT (codes); without DEPARTMENT, back to the category's own (audited)."""
    from data import admin

    with command_store() as engine, engine.begin() as conn:
        admin.set_responsibility(conn, cli_actor(actor), category, district, department)
    click.echo(f"{category} in {district}: {department or 'the category department'}")


@click.command("escalate-overdue")
def escalate_overdue() -> None:
    """Escalate every overdue incident not yet escalated in its due period (督办), once; prints how many."""
    from data.escalation import escalate_overdue as sweep

    with command_store() as engine:
        escalated = sweep(engine)
    click.echo(f"escalated {len(escalated)} overdue incident(s)")


COMMANDS = [webhook, responsibility, escalate_overdue]
