"""The incident card opened from a map marker: what it is, where, whose, and how its clock stands."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dash import html
from sqlalchemy import select

from dashboard import access, ids, jurisdiction
from dashboard.i18n import name, t
from data import schema, store
from data.errors import NotFound
from data.incidents import clock
from data.incidents.feed import get_incident


def _named(conn, table, row_id) -> dict | None:
    if row_id is None:
        return None
    row = conn.execute(select(table.c.name_en, table.c.name_zh).where(table.c.id == row_id)).first()
    return dict(row._mapping) if row else None


def read_card(engine, incident_id: int, now: datetime | None = None) -> dict:
    """The card's facts: the incident row plus the names of its category, department and grid, and its clock."""
    now = now or datetime.now(UTC)
    with store.reading(engine) as conn:
        incident = get_incident(conn, incident_id)
        return {
            "incident": incident,
            "category": _named(conn, schema.categories, incident["category_id"]),
            "department": _named(conn, schema.departments, incident.get("assignee_department_id")),
            "grid": _named(conn, schema.units, incident.get("grid_id")),
            "due_status": clock.due_status(incident, now),
            "due_at": clock.active_due_at(incident),
        }


def _when(moment: datetime | None, tz: str) -> str:
    return "—" if moment is None else f"{moment.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"


def card_shell(lang: str) -> html.Div:
    """The card's frame, hidden until a marker is clicked; its body is filled by incident_card()."""
    return html.Div(
        id=ids.OVERVIEW_CARD,
        className="cb-card",
        hidden=True,
        children=[
            html.Button("×", id=ids.OVERVIEW_CARD_CLOSE, className="cb-card-close", title=t("card.close", lang), n_clicks=0),
            html.Div(id=ids.OVERVIEW_CARD_BODY),
        ],
    )


def incident_card(engine, incident_id: int, lang: str, tz: str) -> list:
    """The card body's children (a short message when the incident is gone)."""
    try:
        with store.reading(engine) as conn:
            jurisdiction.require_incident(conn, incident_id)  # outside the user's reach: as if it did not exist
        facts = read_card(engine, incident_id)
    except NotFound:
        return [html.P(t("card.not_found", lang))]
    incident = facts["incident"]
    due = facts["due_status"]
    rows = [
        ("card.category", name(facts["category"], lang) if facts["category"] else "—"),
        ("card.priority", t(f"priority.{incident['priority']}", lang)),
        ("card.state", t(f"state.{incident['state']}", lang)),
        ("card.reported", _when(incident["reported_at"], tz)),
        ("card.due", f"{_when(facts['due_at'], tz)} · {t(f'due.{due}', lang)}" if due else "—"),
        ("card.assignee", name(facts["department"], lang) if facts["department"] else "—"),
        ("card.grid", name(facts["grid"], lang) if facts["grid"] else "—"),
        ("card.address", incident.get("address") or "—"),
    ]
    return [
        html.H3(f"{t('card.title', lang)} #{incident['id']}", className=f"cb-card-title cb-due-{due or 'none'}"),
        html.P(incident.get("description") or "", className="cb-card-text"),
        html.Dl([item for key, value in rows for item in (html.Dt(t(key, lang)), html.Dd(value))], className="cb-card-facts"),
        # The card opens into the dispatcher's desk (一键调度) for this incident, for those who may open it.
        *(
            [html.A(t("card.open_dispatch", lang), href=f"/dispatch?incident={incident['id']}", className="cb-card-dispatch")]
            if access.may_open("/dispatch")
            else []
        ),
    ]
