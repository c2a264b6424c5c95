"""The dispatcher's desk (`/dispatch`, 一键调度): the queue on the left, the incident panel on the right.

`?incident=<id>` opens an incident straight away (the overview's incident card links here);
`?area=&category=&priority=&state=` preset the filters (no state: awaiting dispatch; `state=all`: the whole queue).
"""

from __future__ import annotations

from datetime import datetime

from dash import dcc, html
from flask import current_app, has_app_context

from dashboard import ids, jurisdiction
from dashboard.cache import cache
from dashboard.components import dispatch_centre, dispatch_panel, dispatch_queue
from dashboard.components.header import brand, nav
from dashboard.i18n import t
from dashboard.pages.overview_model import db_key, single_flight
from data import store
from data.errors import NotFound, ValidationError
from data.incidents import dispatch, notify, queue
from data.parse import id_or_none
from data.times import utc_now

UNDO_TICK_MS = 500


def chosen_filters(query: dict) -> dict:
    """The filters the URL asks for (unknown values dropped)."""
    state = query.get("state") or None
    priority = id_or_none(query.get("priority"))
    return {
        "area": id_or_none(query.get("area")),
        "category": id_or_none(query.get("category")),
        "priority": priority if priority in (1, 2, 3) else None,
        "state": state if state in queue.QUEUE_STATES else None,
    }


def read_queue(
    engine, chosen: dict, now: datetime, *, incident_ids: list[int] | None = None, with_counts: bool = True
) -> tuple[list[dict], dict | None]:
    """(queue rows, headline counts or None) for the chosen filters; an area that vanished means everywhere.

    Clamped to the signed-in user's jurisdiction (an area outside it means theirs); a department
    user's queue holds only incidents with its own department. `incident_ids`: only those of the
    queue's rows (the incidents a change touched).
    """

    def read(conn, area, **filters):
        rows = queue.queue(conn, now, area_id=area, incident_ids=incident_ids, **filters)
        return rows, queue.queue_counts(conn, now, area_id=area) if with_counts else None

    with store.reading(engine) as conn:
        chosen = {**chosen, "area": jurisdiction.clamp_unit(conn, chosen.get("area"))}
        try:
            rows, counts = read(
                conn,
                chosen.get("area"),
                category_id=chosen.get("category"),
                priority=chosen.get("priority"),
                state=chosen.get("state"),
            )
        except ValidationError:
            rows, counts = read(conn, jurisdiction.clamp_unit(conn, None))
    department = jurisdiction.department()
    if department is not None:
        rows = [r for r in rows if r.get("assignee_department_id") == department]
    return rows, counts


@cache.memoize(timeout=600)
def _cached_counts(key: str, head: int, minute: datetime, area: int | None) -> dict:
    # The minute is only part of the key (overdue and near due move with the clock); counted as of now.
    engine = current_app.extensions["citybrain"].engine
    with store.reading(engine) as conn:
        return queue.queue_counts(conn, utc_now(), area_id=area)


def read_counts(engine, chosen: dict, now: datetime) -> dict:
    """The queue's headline counts for the chosen area (clamped to the user's jurisdiction; gone: theirs).

    Cached per (store, feed head, minute, area) inside the app: every desk woken by the same change
    shares one count of the open incidents instead of each running it at once.
    """
    with store.reading(engine) as conn:
        area = jurisdiction.clamp_unit(conn, chosen.get("area"))
        try:
            queue.check_area(conn, area)
        except ValidationError:
            area = jurisdiction.clamp_unit(conn, None)
        head = store.feed_head(conn)
    if not has_app_context():
        with store.reading(engine) as conn:
            return queue.queue_counts(conn, now, area_id=area)
    key = (db_key(engine), head, now.replace(second=0, microsecond=0), area)
    return single_flight(("dispatch-counts", *key), lambda: _cached_counts(*key))


def read_panel(engine, incident_id: int | None, lang: str, settings, departments: list[dict], now: datetime | None = None):
    """(panel children, {id, version, state} or None) for an incident."""
    if not incident_id:
        return dispatch_panel.empty_panel(lang), None
    try:
        with store.reading(engine) as conn:
            jurisdiction.require_incident(conn, incident_id)  # outside the user's reach: as if it did not exist
            facts = dispatch.panel_facts(conn, incident_id)
    except NotFound:
        return dispatch_panel.empty_panel(lang, "dispatch.panel.gone"), None
    incident = facts["incident"]
    children = dispatch_panel.panel(
        facts, lang, settings.timezone, now or utc_now(), departments, settings.tile_url, settings.tile_attribution
    )
    return children, {"id": incident["id"], "version": incident["version"], "state": incident["state"]}


def read_centre(engine, lang: str, settings, scope=None) -> tuple[dict, list]:
    """(unread counts, list children) of the centre's inbox of departments' answers, within `scope`
    (the signed-in user's jurisdiction when none is given)."""
    scope = scope if scope is not None else jurisdiction.scope_tuple()
    with store.reading(engine) as conn:
        unread = notify.centre_unread(conn, scope=scope)
        rows = notify.centre_inbox(conn, scope=scope, limit=dispatch_centre.LIST_LIMIT)
    return unread, dispatch_centre.list_children(rows, lang, settings.timezone)


def header(lang: str, unread: dict | None = None) -> html.Header:
    return html.Header(
        className="cb-top cb-dispatch-top",
        children=[
            brand(t("dispatch.title", lang), lang),
            nav("/dispatch", lang),
            html.Div(
                className="cb-status",
                children=[
                    html.Span(t("live.connecting", lang), id=ids.DISPATCH_LIVE_STATUS, className="cb-live cb-live-connecting"),
                    html.Button(
                        dispatch_centre.badge_children(unread or {}, lang),
                        id=ids.DISPATCH_CENTRE_BADGE,
                        n_clicks=0,
                        className=dispatch_centre.badge_class(unread or {}),
                    ),
                    html.Button(t("lang.switch", lang), id=ids.DISPATCH_LANG_SWITCH, n_clicks=0, className="cb-lang"),
                ],
            ),
        ],
    )


def _prompt(lang: str) -> html.Div:
    """The reason prompt: hidden until an action that needs a reason is clicked."""
    return html.Div(
        id=ids.DISPATCH_PROMPT,
        className="cb-prompt",
        hidden=True,
        children=[
            html.Label("", id=ids.DISPATCH_PROMPT_LABEL, htmlFor=ids.DISPATCH_REASON, className="cb-prompt-label"),
            dcc.Textarea(id=ids.DISPATCH_REASON, value="", className="cb-reason-input", rows=3),
            html.Div(
                className="cb-prompt-hours",
                id=f"{ids.DISPATCH_EXTEND_HOURS}-row",
                hidden=True,
                children=[
                    html.Label(t("dispatch.prompt.hours", lang), htmlFor=ids.DISPATCH_EXTEND_HOURS),
                    dcc.Input(id=ids.DISPATCH_EXTEND_HOURS, type="number", min=1, max=24 * 90, step=1, value=24),
                ],
            ),
            html.Div(
                className="cb-prompt-buttons",
                children=[
                    html.Button(
                        t("dispatch.prompt.ok", lang), id=ids.DISPATCH_PROMPT_OK, n_clicks=0, className="cb-send cb-send-primary"
                    ),
                    html.Button(
                        t("dispatch.prompt.cancel", lang), id=ids.DISPATCH_PROMPT_CANCEL, n_clicks=0, className="cb-send"
                    ),
                ],
            ),
        ],
    )


def layout(deps, query: dict, lang: str) -> html.Div:
    """The whole desk for a first paint: the queue and (with ?incident=) the panel are filled here."""
    settings, engine = deps.settings, deps.engine
    now = utc_now()
    chosen = chosen_filters(query)
    if "state" not in query and jurisdiction.department() is None:
        # A dispatcher's shift starts with the cases waiting for them, most urgent first; ?state=all shows the
        # whole queue (a department's desk holds its own cases, none waiting for a dispatcher: it shows all).
        chosen["state"] = queue.AWAITING
    with store.reading(engine) as conn:
        choices = queue.filter_choices(conn)
        choices["areas"] = jurisdiction.visible_areas(conn, choices["areas"])
        head = store.feed_head(conn)
    rows, counts = read_queue(engine, chosen, now)
    unread, centre_list = read_centre(engine, lang, settings)
    table = dispatch_queue.table_rows(rows, lang, settings.timezone)
    selected = id_or_none(query.get("incident"))
    panel_children, current = read_panel(engine, selected, lang, settings, choices["departments"], now)
    config = {
        "lang": lang,
        "tz": settings.timezone,
        "words": {
            "undo": t("dispatch.undo", lang),
            **{k: t(f"live.{k}", lang) for k in ("live", "connecting", "polling", "stale")},
            # The row count after a live update is worded in the browser (dispatch.js), as count_text does.
            "count": t("dispatch.count", lang),
            "count_capped": t("dispatch.count_capped", lang),
        },
        "queue_limit": queue.QUEUE_LIMIT,
        # The server's clock at the first paint: dispatch.js stamps each click in the server's time with it.
        "server_ms": int(now.timestamp() * 1000),
    }
    return html.Div(
        id=ids.DISPATCH_ROOT,
        className="cb-dispatch",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            header(lang, unread),
            html.Main(
                className="cb-dispatch-body",
                children=[
                    html.Section(
                        className="cb-queue-panel",
                        children=[
                            dispatch_queue.filters(choices, lang, chosen),
                            html.Div(dispatch_queue.kpi_strip(counts, lang), id=ids.DISPATCH_KPIS, className="cb-dkpis"),
                            html.Div(
                                className="cb-queue-tools",
                                children=[
                                    html.Span(dispatch_queue.count_text(len(table), lang), id=ids.DISPATCH_COUNT),
                                    html.Button(
                                        t("dispatch.batch", lang), id=ids.DISPATCH_BATCH, n_clicks=0, className="cb-send"
                                    ),
                                ],
                            ),
                            html.Div(dispatch_queue.queue_grid(table, lang), className="cb-queue-wrap"),
                        ],
                    ),
                    html.Aside(
                        className="cb-incident-panel",
                        children=[
                            html.Div(id=ids.DISPATCH_MESSAGE, className="cb-message", role="status", **{"aria-live": "polite"}),
                            html.Div(
                                id=ids.DISPATCH_UNDO_BAR,
                                className="cb-undo-bar",
                                hidden=True,
                                children=[html.Button("", id=ids.DISPATCH_UNDO, n_clicks=0, className="cb-undo")],
                            ),
                            _prompt(lang),
                            dispatch_centre.centre_section(lang, centre_list),
                            html.Div(panel_children, id=ids.DISPATCH_PANEL, className="cb-panel-body"),
                        ],
                    ),
                ],
            ),
            dcc.Store(id=ids.DISPATCH_SELECTED, data={"id": selected} if selected else None),
            dcc.Store(id=ids.DISPATCH_CURRENT, data=current),
            dcc.Store(id=ids.DISPATCH_CLICK),
            dcc.Store(id=ids.DISPATCH_PENDING),
            dcc.Store(id=ids.DISPATCH_ACTED),
            dcc.Store(id=ids.DISPATCH_UNDO_STATE),
            dcc.Store(id=ids.DISPATCH_STAMPS, data=dispatch_queue.stamps(table)),
            dcc.Store(id=ids.DISPATCH_DELTA),
            dcc.Store(id=ids.DISPATCH_WHOLE),
            dcc.Store(id=ids.DISPATCH_STREAM, data={"url": "/live/events", "head": head}),
            dcc.Store(id=ids.DISPATCH_REFRESH, data={"head": head}),
            dcc.Store(id=ids.DISPATCH_PANEL_REFRESH),
            dcc.Store(id=ids.DISPATCH_FOLLOWING),
            dcc.Store(id=ids.DISPATCH_CONFIG, data=config),
            dcc.Store(id=ids.DISPATCH_CENTRE_SEEN),
            dcc.Interval(id=ids.DISPATCH_TICK, interval=UNDO_TICK_MS),
        ],
    )
