"""One-click reach (一键智达): who a transition tells, the in-app inbox of departments and grid workers, and the centre's inbox.

Every dispatch or reassignment writes, in the transition's own transaction (on_transition, called by
data.incidents.transitions.apply_action for every action), an inbox row for the assignee and, when
the department has a webhook URL, a row in the webhook outbox (data/incidents/webhooks.py). A
department's answers (acknowledge, return, resolve) are reported back to the command centre's own
inbox the same way.
"""

from __future__ import annotations

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.incidents import lifecycle
from data.incidents.webhooks import enqueue_webhook, withdraw_webhook
from data.times import from_db, utc_now

N = schema.notifications

# What a recipient is told; the UI words them (dashboard/i18n.py "inbox.<kind>").
KINDS = ("dispatch", "reassign", "recall", "withdrawn", "escalate")


# --- who a transition tells -----------------------------------------------------------------------

# A department's answers to the whistle (部门报到) that the command centre is told about.
CENTRE_ACTIONS = ("acknowledge", "return", "resolve")
C = schema.centre_notifications
MAX_CENTRE_NOTE_CHARS = 500


def on_transition(
    conn: Connection, action: str, before: dict, after: dict, event_id: int, *, actor: str, note: str | None = None
) -> None:
    """Tell whoever a transition concerns, in its transaction; data.incidents.transitions.apply_action calls it for every action.

    dispatch / reassign: the new assignee (inbox + webhook), and a replaced assignee that its case
    was withdrawn; recall (undo): the withdrawn assignee, cancelling a webhook not yet sent;
    escalate: the assignee; acknowledge / return / resolve: the command centre's inbox.
    """
    previous = (before.get("assignee_department_id"), before.get("assignee_worker_id"))
    current = (after.get("assignee_department_id"), after.get("assignee_worker_id"))
    if action in ("dispatch", "reassign"):
        notify_assignment(conn, after, event_id, kind=action)
        if previous != current:
            notify_withdrawal(conn, after, event_id, *previous, kind="withdrawn")
    elif action == "recall":
        EV = schema.incident_events
        withdrawn = conn.execute(
            select(func.max(EV.c.id)).where(
                EV.c.incident_id == after["id"], EV.c.action.in_(("dispatch", "reassign")), EV.c.id < event_id
            )
        ).scalar()
        notify_withdrawal(conn, after, event_id, *previous, kind="recall", withdrawn_event_id=withdrawn)
    elif action == "escalate":
        notify_escalation(conn, after, event_id)
    elif action in CENTRE_ACTIONS:
        notify_centre(conn, before, event_id, action, actor=actor, note=note)


def notify_centre(conn: Connection, incident: dict, event_id: int, action: str, *, actor: str, note: str | None = None) -> int:
    """Report a department's answer (签收, 退回, 办结) back to the command centre's inbox; its id."""
    if action not in CENTRE_ACTIONS:
        raise ValidationError(f"the centre is told of {', '.join(CENTRE_ACTIONS)}, not {action!r}")
    return conn.execute(
        C.insert()
        .values(
            incident_id=incident["id"],
            event_id=event_id,
            action=action,
            department_id=incident.get("assignee_department_id"),
            worker_id=incident.get("assignee_worker_id"),
            actor=actor,
            note=note[:MAX_CENTRE_NOTE_CHARS] if note else None,
            created_at=utc_now(),
        )
        .returning(C.c.id)
    ).scalar_one()


def _scope_clause(scope):
    """Centre notifications of incidents inside a unit scope ((level, unit_id); None: the whole city)."""
    if scope is None:
        return None
    level, unit_id = scope
    column = {
        schema.DISTRICT: "district_id",
        schema.STREET: "street_id",
        schema.COMMUNITY: "community_id",
        schema.GRID: "grid_id",
    }
    if level == schema.CITY:
        return None
    if level not in column:
        raise ValidationError(f"unknown unit level {level!r}")
    return schema.incidents.c[column[level]] == unit_id


def centre_inbox(
    conn: Connection, *, scope=None, unread_only: bool = False, limit: int = 20, before_id: int | None = None
) -> list[dict]:
    """The centre's inbox newest first: each answer with the incident's category and the department's names."""
    inc, d, w, c = schema.incidents, schema.departments, schema.workers, schema.categories
    stmt = (
        select(
            *C.c,
            inc.c.state.label("incident_state"),
            inc.c.version.label("incident_version"),
            c.c.name_en.label("category_en"),
            c.c.name_zh.label("category_zh"),
            d.c.name_en.label("department_en"),
            d.c.name_zh.label("department_zh"),
            w.c.name_en.label("worker_en"),
            w.c.name_zh.label("worker_zh"),
        )
        .join_from(C, inc, C.c.incident_id == inc.c.id)
        .join(c, c.c.id == inc.c.category_id)
        .outerjoin(d, d.c.id == C.c.department_id)
        .outerjoin(w, w.c.id == C.c.worker_id)
    )
    where = _scope_clause(scope)
    if where is not None:
        stmt = stmt.where(where)
    if unread_only:
        stmt = stmt.where(C.c.read_at.is_(None))
    if before_id is not None:
        stmt = stmt.where(C.c.id < before_id)
    return [_as_dict(r) for r in conn.execute(stmt.order_by(C.c.id.desc()).limit(max(1, min(limit, 500))))]


def centre_unread(conn: Connection, *, scope=None) -> dict[str, int]:
    """How many answers the centre has not read yet, per action, and `total`: what the desk's badge counts, the
    answers that need a dispatcher (returns, and resolutions whose case still awaits verification).
    Acknowledgements are listed but not counted: on a busy afternoon they are most of the answers."""
    inc = schema.incidents
    needs_centre = case(
        (C.c.action == "return", 1),
        (and_(C.c.action == "resolve", inc.c.state == lifecycle.RESOLVED), 1),
        else_=0,
    )
    stmt = (
        select(C.c.action, func.count(), func.sum(needs_centre))
        .join_from(C, inc, C.c.incident_id == inc.c.id)
        .where(C.c.read_at.is_(None))
    )
    where = _scope_clause(scope)
    if where is not None:
        stmt = stmt.where(where)
    counts = dict.fromkeys(CENTRE_ACTIONS, 0)
    total = 0
    for action, n, needing in conn.execute(stmt.group_by(C.c.action)):
        counts[action] = int(n)
        total += int(needing or 0)
    counts["total"] = total
    return counts


def mark_centre_read(conn: Connection, *, actor: str, ids: list[int] | None = None, scope=None) -> int:
    """Mark the centre's answers read (the given ids, or every unread one in `scope`); how many changed."""
    stmt = update(C).where(C.c.read_at.is_(None))
    if ids is not None:
        if not ids:
            return 0
        stmt = stmt.where(C.c.id.in_([int(i) for i in ids]))
    where = _scope_clause(scope)
    if where is not None:
        inside = select(schema.incidents.c.id).where(where)
        stmt = stmt.where(C.c.incident_id.in_(inside))
    return conn.execute(stmt.values(read_at=utc_now(), read_by=actor)).rowcount


# --- what a dispatch tells people ----------------------------------------------------------------


def notify_assignment(conn: Connection, incident: dict, event_id: int, kind: str = "dispatch") -> None:
    """Tell the incident's assignee it has a new case: an inbox row, and a webhook for a department that has one."""
    department_id, worker_id = incident.get("assignee_department_id"), incident.get("assignee_worker_id")
    if department_id is None and worker_id is None:
        raise ValidationError(f"incident {incident['id']} has no assignee to notify")
    _inbox_row(conn, incident["id"], event_id, kind, department_id, worker_id)
    if department_id is not None:
        enqueue_webhook(conn, department_id, incident, event_id, kind)


def notify_withdrawal(
    conn: Connection,
    incident: dict,
    event_id: int,
    department_id: int | None,
    worker_id: int | None,
    kind: str = "recall",
    withdrawn_event_id: int | None = None,
) -> None:
    """Tell a former assignee the case is no longer theirs (undo or reassignment).

    A webhook for the withdrawn dispatch that was never tried is simply cancelled; one already
    posted (or being posted) is followed by a webhook saying the case was withdrawn (withdraw_webhook
    in data/incidents/webhooks.py). In the inbox,
    a withdrawn dispatch nobody had read yet is marked read and so is the note of its withdrawal:
    an undone dispatch leaves nothing waiting for the assignee.
    """
    if department_id is None and worker_id is None:
        return
    unseen = 0
    if withdrawn_event_id is not None:
        owner = N.c.department_id == department_id if department_id is not None else N.c.worker_id == worker_id
        unseen = conn.execute(
            update(N).where(N.c.event_id == withdrawn_event_id, owner, N.c.read_at.is_(None)).values(read_at=utc_now())
        ).rowcount
    _inbox_row(conn, incident["id"], event_id, kind, department_id, worker_id, read=bool(unseen))
    if department_id is None:
        return
    withdraw_webhook(conn, department_id, incident, event_id, kind, withdrawn_event_id)


def notify_escalation(conn: Connection, incident: dict, event_id: int) -> None:
    """Tell the assignee (if any) that its case was escalated (督办)."""
    department_id, worker_id = incident.get("assignee_department_id"), incident.get("assignee_worker_id")
    if department_id is not None or worker_id is not None:
        _inbox_row(conn, incident["id"], event_id, "escalate", department_id, worker_id)


def _inbox_row(conn, incident_id, event_id, kind, department_id, worker_id, read: bool = False) -> None:
    if kind not in KINDS:
        raise ValidationError(f"unknown notification kind {kind!r}")
    now = utc_now()
    conn.execute(
        N.insert().values(
            department_id=department_id,
            worker_id=worker_id,
            incident_id=incident_id,
            event_id=event_id,
            kind=kind,
            created_at=now,
            read_at=now if read else None,
        )
    )


# --- reading the inbox and the log ---------------------------------------------------------------


def _as_dict(row) -> dict:
    return {k: from_db(v) for k, v in row._mapping.items()}


def inbox(
    conn: Connection,
    *,
    department_id: int | None = None,
    worker_id: int | None = None,
    unread_only: bool = False,
    limit: int = 50,
    before_id: int | None = None,
) -> list[dict]:
    """A department's or a grid worker's inbox, newest first (only ids below `before_id` when given: the next page)."""
    if (department_id is None) == (worker_id is None):
        raise ValidationError("inbox needs exactly one of department_id or worker_id")
    stmt = select(N).where(N.c.department_id == department_id if department_id is not None else N.c.worker_id == worker_id)
    if unread_only:
        stmt = stmt.where(N.c.read_at.is_(None))
    if before_id is not None:
        stmt = stmt.where(N.c.id < before_id)
    return [_as_dict(r) for r in conn.execute(stmt.order_by(N.c.id.desc()).limit(max(1, min(limit, 500))))]


def notification(
    conn: Connection, notification_id: int, *, department_id: int | None = None, worker_id: int | None = None
) -> dict | None:
    """One of a recipient's notifications; None when it does not exist or is someone else's (the caller cannot tell which)."""
    if (department_id is None) == (worker_id is None):
        raise ValidationError("notification needs exactly one of department_id or worker_id")
    owner = N.c.department_id == department_id if department_id is not None else N.c.worker_id == worker_id
    row = conn.execute(select(N).where(N.c.id == notification_id, owner)).first()
    return None if row is None else _as_dict(row)


def mark_read(
    conn: Connection, notification_ids: list[int], *, department_id: int | None = None, worker_id: int | None = None
) -> int:
    """Mark a recipient's notifications read (others' ids are ignored); how many changed."""
    if (department_id is None) == (worker_id is None):
        raise ValidationError("mark_read needs exactly one of department_id or worker_id")
    if not notification_ids:
        return 0
    owner = N.c.department_id == department_id if department_id is not None else N.c.worker_id == worker_id
    return conn.execute(
        update(N).where(N.c.id.in_(notification_ids), owner, N.c.read_at.is_(None)).values(read_at=utc_now())
    ).rowcount


__all__ = [
    "CENTRE_ACTIONS",
    "centre_inbox",
    "centre_unread",
    "inbox",
    "mark_centre_read",
    "mark_read",
    "notification",
    "notify_assignment",
    "notify_centre",
    "notify_escalation",
    "notify_withdrawal",
    "on_transition",
]
