"""Early warning (预测预警) store: alerts, their audit log, operators' actions, and what a detection pass writes.

The detection pass itself (surges, hotspots, chronic places, deadlines about to be missed) lives in
data/warnings/detect.py and writes its findings through ``record_findings`` here; its
``run_detection`` is the one entry point the background thread and ``python app.py detect-warnings``
call. Sensitivity per category is in data/warnings/sensitivity.py.

An alert's life: the pass raises it 'open'; an operator acknowledges it, dismisses it (with a
reason) or turns it into a case (an incident to dispatch); the pass marks an open or acknowledged
alert 'cleared' when its condition has gone away. Every change writes an alert_events row in the
same transaction; the largest alert_events id (``alerts_head``) is what screens poll.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.actors import Actor, actor_name, require_unit
from data.errors import InvalidTransition, NotFound, ValidationError
from data.metrics.scope import Scope, normalise_scope
from data.times import from_db, to_utc, utc_now

__all__ = [
    "ACTIONS",
    "KINDS",
    "STATUSES",
    "act_on_alert",
    "alerts_head",
    "get_alert",
    "list_alerts",
    "record_findings",
]

AL, AE = schema.alerts, schema.alert_events
U, C = schema.units, schema.categories

KINDS = schema.ALERT_KINDS
STATUSES = schema.ALERT_STATUSES
OPEN, ACKNOWLEDGED, DISMISSED, CASED, CLEARED = STATUSES
# Still needing attention: the pass updates these and may clear them.
LIVE_STATUSES = (OPEN, ACKNOWLEDGED)

# action -> (statuses it may start from, status it leads to)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": ((OPEN,), ACKNOWLEDGED),
    "dismiss": ((OPEN, ACKNOWLEDGED), DISMISSED),
    "case": ((OPEN, ACKNOWLEDGED), CASED),
}

# The meta key naming (by code) the category a case is filed under when its alert has none.
CASE_CATEGORY_META = "warnings.case_category"
CASE_SOURCE = "warning"
MAX_NOTE = 2000

# The ancestor column of units that places a unit inside a scope of each level.
_UNIT_SCOPE_COLUMN = {
    schema.DISTRICT: "district_id",
    schema.STREET: "street_id",
    schema.COMMUNITY: "community_id",
    schema.GRID: "id",
}


# --- reads ------------------------------------------------------------------------------------


def _alert_columns() -> list:
    return [
        *AL.c,
        U.c.code.label("unit_code"),
        U.c.name_en.label("unit_name_en"),
        U.c.name_zh.label("unit_name_zh"),
        U.c.level.label("unit_level"),
        C.c.code.label("category_code"),
        C.c.name_en.label("category_name_en"),
        C.c.name_zh.label("category_name_zh"),
    ]


def _alert_select():
    return select(*_alert_columns()).select_from(AL.outerjoin(U, U.c.id == AL.c.unit_id).outerjoin(C, C.c.id == AL.c.category_id))


def as_dict(row) -> dict:
    """A row as a dict, its times as aware UTC datetimes."""
    return {key: from_db(value) for key, value in row._mapping.items()}


def _scope_clause(scope: Scope | None):
    if scope is None:
        return true()
    # A unit's own ancestor column may be empty (depends on who built the units): match it by id too.
    return or_(U.c.id == scope.unit_id, U.c[_UNIT_SCOPE_COLUMN[scope.level]] == scope.unit_id)


def _check_choices(values: Iterable[str] | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValidationError(f"unknown {name} {', '.join(map(repr, unknown))}; use {', '.join(allowed)}")
    return values


def list_alerts(
    conn: Connection,
    scope: Any = None,
    statuses: Iterable[str] | None = (OPEN,),
    kinds: Iterable[str] | None = None,
    limit: int = 100,
) -> list[dict]:
    """Alerts ranked most urgent first (score, then newest), with their unit's and category's names.

    `scope` None is the whole city, else (level, unit_id): alerts on units inside that unit.
    `statuses` / `kinds` None means any.
    """
    scope = normalise_scope(scope)
    statuses = _check_choices(statuses, STATUSES, "status")
    kinds = _check_choices(kinds, KINDS, "kind")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit must be a whole number of at least 1")
    stmt = _alert_select().where(_scope_clause(scope))
    if statuses is not None:
        stmt = stmt.where(AL.c.status.in_(statuses))
    if kinds is not None:
        stmt = stmt.where(AL.c.kind.in_(kinds))
    rows = conn.execute(stmt.order_by(AL.c.score.desc(), AL.c.id.desc()).limit(limit))
    return [as_dict(r) for r in rows]


def get_alert(conn: Connection, alert_id: int) -> dict:
    """One alert with its unit's and category's names; NotFound when there is none."""
    row = conn.execute(_alert_select().where(AL.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return as_dict(row)


def alert_history(conn: Connection, alert_id: int) -> list[dict]:
    """The alert's audit events in the order they happened."""
    get_alert(conn, alert_id)
    return [as_dict(r) for r in conn.execute(select(AE).where(AE.c.alert_id == alert_id).order_by(AE.c.id))]


def alerts_head(conn: Connection) -> int:
    """The newest alert_events id: changes whenever any alert or setting changes (cheap to poll)."""
    return conn.execute(select(func.coalesce(func.max(AE.c.id), 0))).scalar_one()


# --- operators' actions -------------------------------------------------------------------------


def require_actor(actor: Any) -> str:
    """Who makes a change, stripped; ValidationError when missing or too long (an unnamed change cannot be audited)."""
    return actor_name(actor)


def _clean_note(note: Any) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str):
        raise ValidationError("the note must be text")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ValidationError(f"the note is longer than {MAX_NOTE} characters")
    return note or None


def write_event(conn: Connection, alert_id: int | None, at: datetime, actor: str, action: str, note: str | None = None) -> None:
    """One alert_events row (alert_id None for a settings change): the audit log, and the head screens poll."""
    conn.execute(AE.insert().values(alert_id=alert_id, at=at, actor=actor, action=action, note=note))


def act_on_alert(
    conn: Connection, alert_id: int, action: str, actor: str | Actor, note: str | None = None, now: datetime | None = None
) -> dict:
    """Acknowledge, dismiss (a reason is required) or turn an alert into a case; returns the alert after.

    'case' files an incident (source 'warning', external id 'alert-<id>') of the alert's category
    (or the configured general one) at the alert's point, described by its reason. An action the
    alert's status does not allow raises InvalidTransition; of two operators clicking at once,
    one acts and the other gets InvalidTransition with the status the first left. An Actor with a
    jurisdiction reaches only alerts on units inside it (NotFound otherwise, as for a missing one).
    """
    if action not in ACTIONS:
        raise ValidationError(f"unknown action {action!r}; use {', '.join(ACTIONS)}")
    reach, actor = actor, actor_name(actor)
    note = _clean_note(note)
    now = to_utc(now, "now") if now is not None else utc_now()
    if action == "dismiss" and not note:
        raise ValidationError("a reason is required to dismiss an alert")
    alert = get_alert(conn, alert_id)
    require_unit(conn, reach, alert["unit_id"], f"alert {alert_id} does not exist")
    allowed_from, to_status = ACTIONS[action]
    if alert["status"] not in allowed_from:
        raise InvalidTransition(action, alert["status"], f"cannot {action} an alert that is {alert['status']}")
    case_category = _case_category(conn, alert) if action == "case" else None
    # Conditional on the status read: of two concurrent clicks only one row update succeeds.
    claimed = conn.execute(
        AL.update()
        .where(AL.c.id == alert_id, AL.c.status == alert["status"])
        .values(status=to_status, acted_at=now, acted_by=actor, act_note=note, version=AL.c.version + 1)
    ).rowcount
    if claimed != 1:
        current = conn.execute(select(AL.c.status).where(AL.c.id == alert_id)).scalar_one()
        raise InvalidTransition(action, current, f"cannot {action} an alert that is now {current} (someone acted first)")
    if action == "case":
        incident_id = _file_case(conn, alert, case_category, actor, now)
        conn.execute(AL.update().where(AL.c.id == alert_id).values(case_incident_id=incident_id))
        note = f"incident {incident_id}" + (f": {note}" if note else "")
    write_event(conn, alert_id, now, actor, action, note)
    return get_alert(conn, alert_id)


def _case_category(conn: Connection, alert: dict) -> int:
    """The category a case from this alert is filed under: its own, else the configured general one."""
    from data.store import get_meta

    if alert["category_id"] is not None:
        return int(alert["category_id"])
    code = get_meta(conn, CASE_CATEGORY_META)
    category_id = conn.execute(select(C.c.id).where(C.c.code == code, C.c.active.is_(True))).scalar() if code else None
    if category_id is None:
        raise ValidationError(
            f"this alert has no category: set the general category for cases from warnings (meta {CASE_CATEGORY_META})"
        )
    return int(category_id)


def _file_case(conn: Connection, alert: dict, category_id: int, actor: str, now: datetime) -> int:
    from data.incidents.intake import report_incidents

    row = {
        "source": CASE_SOURCE,
        "external_id": f"alert-{alert['id']}",
        "category_id": int(category_id),
        "priority": 2,
        "description": f"{alert['reason_en']}\n{alert['reason_zh']}",
        "lon": alert["lon"],
        "lat": alert["lat"],
        "reported_at": now,
        "attributes": {"alert_id": int(alert["id"]), "alert_kind": alert["kind"]},
    }
    (result,) = report_incidents(conn, [row], actor=actor, now=now)
    return result.incident_id


# --- what the detection pass writes ----------------------------------------------------------


def record_findings(
    conn: Connection, findings: list[dict], kinds_run: Iterable[str], now: datetime, actor: str = "system:early-warning"
) -> dict[str, dict[str, int]]:
    """Store one pass's findings: raise new alerts, update live ones, clear live ones no longer found.

    Each finding is a dict with kind, condition_key, score, observed, expected, unit_id,
    category_id, incident_id, lon, lat, reason_en, reason_zh, details (a dict) and optionally
    cooldown (seconds). A condition whose last alert was dismissed, cased or cleared less than its
    cooldown ago is not raised again (the operator already dealt with it). A live alert's figures
    are refreshed every pass, but an 'updated' event (which screens follow) is written only when
    they changed materially. Only alerts of `kinds_run` are cleared. Returns counts per kind.
    """
    now = to_utc(now, "now")
    kinds_run = tuple(kinds_run)
    counts = {k: {"raised": 0, "updated": 0, "cleared": 0, "suppressed": 0} for k in KINDS}
    latest = _latest_by_condition(conn, [f["condition_key"] for f in findings])
    found_keys: set[str] = set()
    refresh, quiet, events = [], [], []
    for f in findings:
        key = f["condition_key"]
        if key in found_keys:
            continue
        found_keys.add(key)
        prior = latest.get(key)
        values = {
            "score": float(f["score"]),
            "observed": _float_or_none(f.get("observed")),
            "expected": _float_or_none(f.get("expected")),
            "reason_en": f["reason_en"],
            "reason_zh": f["reason_zh"],
            "details": json.dumps(f.get("details") or {}, ensure_ascii=False, default=str),
        }
        if prior is not None and prior.status in LIVE_STATUSES:
            refresh.append({"_id": prior.id, **values})
            if _material_change(prior, values):
                note = None if values["observed"] is None else f"observed {values['observed']:g}"
                events.append({"alert_id": prior.id, "at": now, "actor": actor, "action": "updated", "note": note})
                counts[f["kind"]]["updated"] += 1
            continue
        cooldown = float(f.get("cooldown", 0))
        if prior is not None and (now - from_db(prior.last_seen_at)).total_seconds() < cooldown:
            # Dealt with (or just cleared) and still the same condition: keep quiet, remember it is still there.
            quiet.append({"_id": prior.id})
            counts[f["kind"]]["suppressed"] += 1
            continue
        episode = 1 if prior is None else prior.episode + 1
        alert_id = conn.execute(
            AL.insert()
            .values(
                kind=f["kind"],
                condition_key=key,
                dedup_key=f"{key}#{episode}",
                status=OPEN,
                unit_id=f.get("unit_id"),
                category_id=f.get("category_id"),
                incident_id=f.get("incident_id"),
                lon=_float_or_none(f.get("lon")),
                lat=_float_or_none(f.get("lat")),
                first_seen_at=now,
                last_seen_at=now,
                **values,
            )
            .returning(AL.c.id)
        ).scalar_one()
        events.append({"alert_id": alert_id, "at": now, "actor": actor, "action": "raised", "note": None})
        counts[f["kind"]]["raised"] += 1
    if refresh:
        conn.execute(
            AL.update()
            .where(AL.c.id == bindparam("_id"))
            .values({**{name: bindparam(name) for name in refresh[0] if name != "_id"}, "last_seen_at": now}),
            refresh,
        )
    if quiet:
        conn.execute(AL.update().where(AL.c.id == bindparam("_id")).values(last_seen_at=now), quiet)
    if kinds_run:
        gone = conn.execute(
            select(AL.c.id, AL.c.kind, AL.c.condition_key).where(AL.c.status.in_(LIVE_STATUSES), AL.c.kind.in_(kinds_run))
        ).all()
        cleared = [row for row in gone if row.condition_key not in found_keys]
        if cleared:
            conn.execute(
                AL.update()
                .where(AL.c.id == bindparam("_id"), or_(*(AL.c.status == s for s in LIVE_STATUSES)))
                .values(status=CLEARED, last_seen_at=now, version=AL.c.version + 1),
                [{"_id": row.id} for row in cleared],
            )
        for row in cleared:
            events.append(
                {"alert_id": row.id, "at": now, "actor": actor, "action": "cleared", "note": "the condition has gone away"}
            )
            counts[row.kind]["cleared"] += 1
    if events:
        conn.execute(AE.insert(), events)
    return counts


def _material_change(prior, values: dict) -> bool:
    """Whether refreshed figures differ enough to tell the screens (a count by one, a score by one, a share by 0.1)."""
    if abs((prior.score or 0.0) - values["score"]) >= 1.0:
        return True
    old, new = prior.observed, values["observed"]
    if old is None or new is None:
        return old is not new
    step = 1.0 if max(abs(old), abs(new)) >= 1.0 else 0.1
    return abs(new - old) >= step


def _latest_by_condition(conn: Connection, keys: list[str]):
    """{condition key: its newest alert row (id, status, observed, score, last_seen_at, episode)}."""
    out = {}
    keys = sorted(set(keys))
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        newest = (
            select(AL.c.condition_key, func.max(AL.c.id).label("id"), func.count().label("episode"))
            .where(AL.c.condition_key.in_(chunk))
            .group_by(AL.c.condition_key)
            .subquery()
        )
        rows = conn.execute(
            select(AL.c.id, AL.c.condition_key, AL.c.status, AL.c.observed, AL.c.score, AL.c.last_seen_at, newest.c.episode).join(
                newest, and_(newest.c.id == AL.c.id)
            )
        )
        out.update({r.condition_key: r for r in rows})
    return out


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
