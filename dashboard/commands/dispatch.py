"""Commands of the dispatch area: department webhooks and their delivery log, responsibility lists, escalation sweeps, the working calendar."""

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
    """Post DEPARTMENT's dispatches to URL; prints the secret its receiver checks signatures with (audited, not the secret).

    URL must be a public address unless CITYBRAIN_WEBHOOK_ALLOW lists its host or network (e.g. 10.20.0.0/16).
    """
    from dashboard.settings import Settings
    from data.accounts.admin.departments import set_department_webhook
    from data.incidents import webhooks
    from data.incidents.webhook_targets import WebhookTargets

    with command_store() as engine, engine.begin() as conn:
        targets = WebhookTargets.parse(Settings.from_env().webhook_allow)
        used = set_department_webhook(conn, cli_actor(actor), department, url, secret, targets=targets)
    click.echo(f"{department}: webhooks go to {url}")
    click.echo(f"signing secret (header {webhooks.SIGNATURE_HEADER}: sha256=HMAC of the body): {used}")


@webhook.command("off")
@click.argument("department")
@actor_option
def webhook_off(department: str, actor: str | None) -> None:
    """Stop posting DEPARTMENT's dispatches (its inbox still gets them)."""
    from data.accounts.admin.departments import set_department_webhook

    with command_store() as engine, engine.begin() as conn:
        set_department_webhook(conn, cli_actor(actor), department, None)
    click.echo(f"{department}: webhook off")


@webhook.command("log")
@click.option("--department", default=None, help="Only this department's deliveries.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def webhook_log(department: str | None, limit: int) -> None:
    """The delivery log: each webhook, its status and every attempt."""
    from data import store
    from data.incidents import webhooks

    with command_store() as engine, store.reading(engine) as conn:
        department_id = _department_id(conn, department) if department else None
        rows = webhooks.deliveries(conn, department_id=department_id, limit=limit)
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
    from data.accounts.admin.responsibility import set_responsibility

    with command_store() as engine, engine.begin() as conn:
        set_responsibility(conn, cli_actor(actor), category, district, department)
    click.echo(f"{category} in {district}: {department or 'the category department'}")


@click.command("escalate-overdue")
def escalate_overdue() -> None:
    """Escalate every overdue incident not yet escalated in its due period (督办), once; prints how many."""
    from data.incidents.escalation import escalate_overdue as sweep

    with command_store() as engine:
        escalated = sweep(engine)
    click.echo(f"escalated {len(escalated)} overdue incident(s)")


@click.group("work-calendar")
def work_calendar() -> None:
    """The optional working-hours calendar: when on, time limits count working hours (holidays and 调休 make-up days too)."""


def _describe(calendar, enabled: bool) -> str:
    from data.incidents import calendar as cal

    if calendar is None:
        return "working calendar: off (never set); time limits run on the wall clock"
    lines = [
        f"working calendar: {'on' if enabled else 'off'}",
        f"  time zone: {calendar.time_zone}",
        f"  weekdays (ISO, Monday=1): {cal.format_weekdays(calendar.weekdays)}",
        f"  hours: {cal.format_hours(calendar.periods)}",
        f"  holidays: {', '.join(d.isoformat() for d in sorted(calendar.holidays)) or '-'}",
        f"  make-up working days: {', '.join(d.isoformat() for d in sorted(calendar.workdays)) or '-'}",
        f"  urgent (priority 1): {'wall clock' if calendar.urgent_wall_clock else 'working hours'}",
    ]
    return "\n".join(lines)


@work_calendar.command("show")
def work_calendar_show() -> None:
    """Print the stored calendar and whether it is on."""
    from data import store
    from data.incidents import calendar as cal

    with command_store() as engine, store.reading(engine) as conn:
        click.echo(_describe(*cal.stored(conn)))


@work_calendar.command("set")
@click.option("--hours", default=None, help="Working periods of a day, e.g. 09:00-12:00,13:30-18:00 (default: kept, or that).")
@click.option("--weekdays", default=None, help="Working weekdays, e.g. 1-5 or mon-fri (default: kept, or 1-5).")
@click.option("--holidays", default=None, help="Days off, e.g. 2026-10-01..2026-10-08,2026-01-01 (replaces the list; '' clears).")
@click.option("--workdays", default=None, help="Make-up working days (调休), e.g. 2026-09-27,2026-10-10 (replaces the list).")
@click.option("--time-zone", default=None, help="The calendar's zone (default: kept, or CITYBRAIN_TIMEZONE).")
@click.option(
    "--urgent-wall-clock/--urgent-working-hours",
    default=None,
    help="Whether priority-1 limits ignore the calendar (default: kept, or wall clock).",
)
def work_calendar_set(hours, weekdays, holidays, workdays, time_zone, urgent_wall_clock) -> None:
    """Store the calendar and turn it on; options not given keep their stored value."""
    from dashboard.settings import Settings
    from data.incidents import calendar as cal

    with command_store() as engine, engine.begin() as conn:
        kept, _ = cal.stored(conn)
        calendar = cal.WorkCalendar(
            time_zone=time_zone or (kept.time_zone if kept else Settings.from_env().timezone),
            weekdays=cal.parse_weekdays(
                weekdays if weekdays is not None else (cal.format_weekdays(kept.weekdays) if kept else cal.DEFAULT_WEEKDAYS)
            ),
            periods=cal.parse_hours(
                hours if hours is not None else (cal.format_hours(kept.periods) if kept else cal.DEFAULT_HOURS)
            ),
            holidays=cal.parse_dates(holidays) if holidays is not None else (kept.holidays if kept else frozenset()),
            workdays=cal.parse_dates(workdays) if workdays is not None else (kept.workdays if kept else frozenset()),
            urgent_wall_clock=urgent_wall_clock if urgent_wall_clock is not None else (kept.urgent_wall_clock if kept else True),
        )
        cal.save(conn, calendar)
        click.echo(_describe(calendar, True))
    click.echo("Incidents dispatched from now on count these working hours; due times already set are kept.")


@work_calendar.command("off")
def work_calendar_off() -> None:
    """Turn the calendar off (kept for later): time limits run on the wall clock again."""
    from data.incidents import calendar as cal

    with command_store() as engine, engine.begin() as conn:
        cal.save(conn, None, enabled=False)
    click.echo("working calendar: off; time limits run on the wall clock")


COMMANDS = [webhook, responsibility, escalate_overdue, work_calendar]
