"""The audit logs as CSV over a range of days: the sign-in log and the admin change log, for the /admin page's download links and `python app.py admin signins|log --csv`.

Every cell goes through dashboard/csv_safe.py: user names as typed, user agents and recorded values are
anybody's text, and a spreadsheet must not run one as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request

from dashboard.access import ADMIN, requires
from dashboard.csv_safe import safe_row
from data import store
from data.accounts import signins
from data.accounts.admin import audit
from data.times import day_bounds

bp = Blueprint("audit_exports", __name__)

SIGNIN_COLUMNS = ("id", "at", "outcome", "username", "account", "address", "user_agent")
ADMIN_LOG_COLUMNS = ("id", "at", "actor", "entity", "entity_key", "action", "before", "after", "note")


def parse_day(text) -> date | None:
    """A YYYY-MM-DD day, None when empty; ValueError otherwise."""
    text = (text or "").strip() if isinstance(text, str) else ""
    return date.fromisoformat(text) if text else None


def signin_rows(conn, first: date | None, last: date | None, tz: str, *, outcome: str | None = None, limit=None) -> list[dict]:
    """Sign-in log rows of the days `first`..`last` (the city's days, both included), newest first, times in `tz`."""
    since, until = day_bounds(first, last, tz)
    rows = signins.events(conn, since=since, until=until, outcome=outcome or None, limit=limit)
    return [{**row, "at": _local(row["at"], tz)} for row in rows]


def admin_log_rows(
    conn, first: date | None, last: date | None, tz: str, *, entity: str | None = None, entity_key: str | None = None, limit=None
) -> list[dict]:
    """Admin change log rows of the days `first`..`last`, newest first, times in `tz`, before/after as JSON text."""
    since, until = day_bounds(first, last, tz)
    rows = audit.events(conn, entity=entity or None, entity_key=entity_key or None, since=since, until=until, limit=limit)
    return [{**row, "at": _local(row["at"], tz), "before": _json(row["before"]), "after": _json(row["after"])} for row in rows]


def to_csv(columns: Iterable[str], rows: list[dict]) -> str:
    """A CSV document of `rows` under a header of `columns`, every cell spreadsheet-safe."""
    columns = tuple(columns)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(safe_row("" if row.get(c) is None else row.get(c) for c in columns))
    return out.getvalue()


def _local(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def _json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- the download routes (administrators only) ---------------------------------------------------


def _download(kind: str, columns: tuple[str, ...], read) -> Response:
    try:
        first, last = parse_day(request.args.get("since")), parse_day(request.args.get("until"))
    except ValueError:
        return Response("since and until are days: YYYY-MM-DD\n", status=400, mimetype="text/plain")
    deps = current_app.extensions["citybrain"]
    with store.reading(deps.engine) as conn:
        rows = read(conn, first, last, deps.settings.timezone)
    name = "-".join(["citybrain", kind, *(d.isoformat() for d in (first, last) if d is not None)])
    response = Response(to_csv(columns, rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@bp.get("/admin/export/signins.csv")
@requires(ADMIN)
def signins_csv():
    outcome = request.args.get("outcome") or None
    if outcome is not None and outcome not in signins.OUTCOMES:
        return Response(f"outcome is one of {', '.join(signins.OUTCOMES)}\n", status=400, mimetype="text/plain")
    return _download("signins", SIGNIN_COLUMNS, lambda conn, a, b, tz: signin_rows(conn, a, b, tz, outcome=outcome))


@bp.get("/admin/export/admin-log.csv")
@requires(ADMIN)
def admin_log_csv():
    entity = request.args.get("entity") or None
    if entity is not None and entity not in audit.ENTITIES:
        return Response(f"entity is one of {', '.join(audit.ENTITIES)}\n", status=400, mimetype="text/plain")
    return _download("admin-log", ADMIN_LOG_COLUMNS, lambda conn, a, b, tz: admin_log_rows(conn, a, b, tz, entity=entity))
