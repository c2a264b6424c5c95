"""The administration page (`/admin`, 系统管理): tabs of tables and small forms over data/accounts/admin/, for administrators only.

Tabs: users, API keys, departments, categories and their time limits, the responsibility list,
grid workers' duty lists, and the two logs (admin changes, sign-ins: dashboard/pages/admin_audit.py).
Every change goes through callbacks/admin.py
to data/accounts/admin/, which audits it. Component ids are `admin-<thing>`, the area sign-in guards.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import dash_ag_grid as dag
from dash import dcc, html

from dashboard import admin_text  # noqa: F401  (registers the page's strings with i18n)
from dashboard.components.header import brand, nav
from dashboard.i18n import name, t
from dashboard.pages import admin_audit
from data import schema, store
from data.accounts import apikeys
from data.accounts.admin.categories import SECTORS, list_categories
from data.accounts.admin.checks import CITY_WIDE, PRIORITIES
from data.accounts.admin.departments import DEPARTMENT_KINDS, list_departments
from data.accounts.admin.duties import list_workers
from data.accounts.admin.responsibility import responsibility_list
from data.accounts.admin.users import list_users, unit_choices

ROOT = "admin-root"
TABS = "admin-tabs"
LANG = "admin-lang"
TAB_KEYS = ("users", "keys", "departments", "categories", "responsibility", "duties", *admin_audit.LOG_TABS)


def grid_id(tab: str) -> str:
    return f"admin-{tab}-grid"


def act_type(tab: str) -> str:
    """The pattern-id type of a tab's buttons: {"type": act_type(tab), "index": action}."""
    return f"admin-{tab}-act"


def message_id(tab: str) -> str:
    return f"admin-{tab}-message"


def field_id(tab: str, field: str) -> str:
    return f"admin-{tab}-{field.replace('_', '-')}"


# Each tab's form fields, in the order its callback reads them.
FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("username", "display_name", "password", "role", "unit", "department"),
    "keys": ("name", "scopes", "source", "department", "rate_limit", "unit"),
    "departments": ("code", "name_en", "name_zh", "kind", "webhook"),
    "categories": (
        "code",
        "priority",
        "ack",
        "handle",
        "new_code",
        "name_en",
        "name_zh",
        "sector",
        "department",
        "grid_worker_ok",
    ),
    "responsibility": ("category", "district", "department"),
    "duties": ("worker", "categories"),
}
# Each tab's buttons (actions), as (action, text key).
BUTTONS: dict[str, tuple[tuple[str, str], ...]] = {
    "users": (
        ("create", "admin.b.create"),
        ("save", "admin.b.save"),
        ("reset_password", "admin.b.reset_password"),
        ("deactivate", "admin.b.deactivate"),
        ("activate", "admin.b.activate"),
    ),
    "keys": (("create", "admin.b.create"), ("revoke", "admin.b.revoke")),
    "departments": (
        ("create", "admin.b.create"),
        ("save", "admin.b.save"),
        ("webhook", "admin.b.webhook"),
        ("webhook_off", "admin.b.webhook_off"),
        ("deactivate", "admin.b.deactivate"),
        ("activate", "admin.b.activate"),
    ),
    "categories": (("create", "admin.b.create"), ("save", "admin.b.save"), ("limits", "admin.b.save_limits")),
    "responsibility": (("save", "admin.b.save_responsibility"),),
    "duties": (("save", "admin.b.save_duties"),),
}
DUTIES_SEARCH = "admin-duties-search"
SECRET = "admin-secret"  # where a new API key or webhook secret is shown, once


# --- what the tables show ------------------------------------------------------------------------


def rows(engine, tab: str, lang: str, tz: str, *, search: str | None = None, scope=None) -> list[dict]:
    """The rows of a tab's table, ready for AG Grid (plain JSON values); the log tabs' are admin_audit.rows."""
    zone = ZoneInfo(tz)

    def when(moment) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}" if moment else ""

    with store.reading(engine) as conn:
        if tab == "users":
            return [
                {
                    "username": u["username"],
                    "display_name": u["display_name"],
                    "role": u["role"],
                    "role_text": t(f"admin.role.{u['role']}", lang),
                    "unit": u["unit_code"] or "",
                    "unit_text": name({"name_en": u["unit_name_en"], "name_zh": u["unit_name_zh"]}, lang)
                    or t("admin.f.city_wide", lang),
                    "department": u["department_code"] or "",
                    "active": u["active"],
                    "last_login": when(u["last_login_at"]),
                }
                for u in list_users(conn)
            ]
        if tab == "keys":
            return [
                {
                    "id": k.id,
                    "name": k.name,
                    "prefix": k.prefix + "…",
                    "scopes": " ".join(sorted(k.scopes)),
                    "source": k.source or "",
                    "department": k.department_code or "",
                    "rate_limit": k.rate_limit or "",
                    "unit_text": k.unit_code or t("admin.f.city_wide", lang),
                    "created": when(k.created_at),
                    "revoked": when(k.revoked_at),
                }
                for k in apikeys.list_keys(conn)
            ]
        if tab == "departments":
            return [{k: v for k, v in d.items() if k != "id"} for d in list_departments(conn)]
        if tab == "categories":
            return [{k: v for k, v in c.items() if k != "id"} for c in list_categories(conn)]
        if tab == "responsibility":
            return [
                {
                    "category": r["category"],
                    "category_text": name(r, lang),
                    "district": r["district"] or "",
                    "district_text": name({"name_en": r["district_en"], "name_zh": r["district_zh"]}, lang)
                    if r["district"]
                    else t("admin.f.city_wide", lang),
                    "department": r["department"],
                }
                for r in responsibility_list(conn)
            ]
        if tab == "duties":
            return [
                {
                    "code": w["code"],
                    "name": name(w, lang),
                    "grid": w["grid"],
                    "duties": " ".join(w["duties"]),
                    "active": bool(w["active"]),
                }
                for w in list_workers(conn, scope=scope, search=search, limit=500)
            ]
    raise ValueError(f"no admin tab {tab!r}")


def _columns(tab: str, lang: str) -> list[dict]:
    def col(field: str, key: str, **extra) -> dict:
        return {"field": field, "headerName": t(key, lang), **extra}

    if tab == "users":
        return [
            col("username", "admin.f.username"),
            col("display_name", "admin.f.display_name"),
            col("role_text", "admin.f.role"),
            col("unit_text", "admin.f.unit"),
            col("department", "admin.f.department"),
            col("active", "admin.f.active", width=90),
            col("last_login", "admin.f.last_login"),
        ]
    if tab == "keys":
        return [
            col("name", "admin.f.key_name"),
            col("prefix", "admin.f.prefix"),
            col("scopes", "admin.f.scopes"),
            col("source", "admin.f.source"),
            col("department", "admin.f.department"),
            col("rate_limit", "admin.f.rate_limit"),
            col("unit_text", "admin.f.unit"),
            col("created", "admin.f.created"),
            col("revoked", "admin.f.revoked"),
        ]
    if tab == "departments":
        return [
            col("code", "admin.f.code", width=110),
            col("name_en", "admin.f.name_en"),
            col("name_zh", "admin.f.name_zh"),
            col("kind", "admin.f.kind", width=110),
            col("active", "admin.f.active", width=90),
            col("webhook_url", "admin.f.webhook"),
        ]
    if tab == "categories":
        limits = []
        for p in PRIORITIES:
            limits += [
                col(f"ack_{p}", "admin.f.ack", headerName=t("admin.f.ack_p", lang).format(p=p), width=100),
                col(f"handle_{p}", "admin.f.handle", headerName=t("admin.f.handle_p", lang).format(p=p), width=110),
            ]
        return [
            col("code", "admin.f.code", pinned="left", width=150),
            col("name_en", "admin.f.name_en"),
            col("name_zh", "admin.f.name_zh"),
            col("sector", "admin.f.sector", width=110),
            col("department", "admin.f.department", width=110),
            col("grid_worker_ok", "admin.f.grid_worker_ok", width=110),
            *limits,
        ]
    if tab == "responsibility":
        return [
            col("category", "admin.f.code"),
            col("category_text", "admin.f.category"),
            col("district_text", "admin.f.district"),
            col("department", "admin.f.department"),
        ]
    if tab == "duties":
        return [
            col("code", "admin.f.worker"),
            col("name", "admin.f.worker_name"),
            col("grid", "admin.f.grid"),
            col("duties", "admin.f.duties", flex=2),
        ]
    raise ValueError(f"no admin tab {tab!r}")


def table(tab: str, data: list[dict], lang: str) -> dag.AgGrid:
    """A tab's table: sortable, filterable, one row selected at a time (to fill the form)."""
    return admin_audit.admin_grid(
        grid_id(tab),
        data,
        _columns(tab, lang),
        rowSelection={"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
    )


# --- forms ----------------------------------------------------------------------------------------


def _labelled(text: str, control, wide: bool = False) -> html.Label:
    return html.Label(
        [html.Span(text, className="cb-admin-label"), control],
        className="cb-admin-field cb-admin-wide" if wide else "cb-admin-field",
    )


def _text(tab: str, field: str, lang: str, key: str, kind: str = "text", **extra) -> html.Label:
    return _labelled(
        t(key, lang), dcc.Input(id=field_id(tab, field), type=kind, debounce=False, className="cb-admin-input", **extra)
    )


def _select(tab: str, field: str, lang: str, key: str, options: list[dict], value=None, multi: bool = False) -> html.Label:
    return _labelled(
        t(key, lang),
        dcc.Dropdown(
            id=field_id(tab, field), options=options, value=value, multi=multi, clearable=True, className="cb-admin-select"
        ),
        wide=multi,
    )


def _buttons(tab: str, lang: str) -> html.Div:
    return html.Div(
        [
            html.Button(t(key, lang), id={"type": act_type(tab), "index": action}, n_clicks=0, className="cb-admin-button")
            for action, key in BUTTONS[tab]
        ],
        className="cb-admin-buttons",
    )


def _message(tab: str) -> html.Div:
    return html.Div(id=message_id(tab), className="cb-admin-message", role="status", **{"aria-live": "polite"})


def choices(engine, lang: str) -> dict[str, list[dict]]:
    """Dropdown options: departments, categories, districts and streets (by code, shown by name)."""
    with store.reading(engine) as conn:
        departments = [d for d in list_departments(conn) if d["active"]]
        categories = list_categories(conn)
        units = unit_choices(conn)
    indent = {schema.DISTRICT: "", schema.STREET: "　"}
    return {
        "departments": [{"label": f"{name(d, lang)} ({d['code']})", "value": d["code"]} for d in departments],
        "categories": [{"label": f"{name(c, lang)} ({c['code']})", "value": c["code"]} for c in categories],
        "grid_categories": [
            {"label": f"{name(c, lang)} ({c['code']})", "value": c["code"]}
            for c in categories
            if c["grid_worker_ok"] and c["active"]
        ],
        "units": [{"label": t("admin.f.city_wide", lang), "value": CITY_WIDE}]
        + [{"label": f"{indent[u['level']]}{name(u, lang)} ({u['code']})", "value": u["code"]} for u in units],
        "districts": [{"label": t("admin.f.city_wide", lang), "value": CITY_WIDE}]
        + [{"label": f"{name(u, lang)} ({u['code']})", "value": u["code"]} for u in units if u["level"] == schema.DISTRICT],
    }


def _form(tab: str, lang: str, options: dict) -> html.Div:
    f: list = []
    if tab == "users":
        roles = [{"label": t(f"admin.role.{r}", lang), "value": r} for r in schema.ROLES]
        f = [
            _text(tab, "username", lang, "admin.f.username"),
            _text(tab, "display_name", lang, "admin.f.display_name"),
            _text(tab, "password", lang, "admin.f.password", kind="password", autoComplete="new-password"),
            _select(tab, "role", lang, "admin.f.role", roles),
            _select(tab, "unit", lang, "admin.f.unit", options["units"]),
            _select(tab, "department", lang, "admin.f.department", options["departments"]),
        ]
    elif tab == "keys":
        f = [
            _text(tab, "name", lang, "admin.f.key_name"),
            _labelled(
                t("admin.f.scopes", lang),
                dcc.Checklist(
                    id=field_id(tab, "scopes"), options=list(apikeys.SCOPES), value=[], inline=True, className="cb-admin-checks"
                ),
            ),
            _text(tab, "source", lang, "admin.f.source"),
            _select(tab, "department", lang, "admin.f.department", options["departments"]),
            _text(tab, "rate_limit", lang, "admin.f.rate_limit"),
            _select(tab, "unit", lang, "admin.f.unit", options["units"], value=CITY_WIDE),
        ]
    elif tab == "departments":
        f = [
            _text(tab, "code", lang, "admin.f.code"),
            _text(tab, "name_en", lang, "admin.f.name_en"),
            _text(tab, "name_zh", lang, "admin.f.name_zh"),
            _select(tab, "kind", lang, "admin.f.kind", list(DEPARTMENT_KINDS)),
            _text(tab, "webhook", lang, "admin.f.webhook", kind="url"),
        ]
    elif tab == "categories":
        sectors = [{"label": t(f"sector.{s}", lang), "value": s} for s in SECTORS]
        priorities = [{"label": f"{p} · {t(f'priority.{p}', lang)}", "value": p} for p in PRIORITIES]
        f = [
            _select(tab, "code", lang, "admin.f.category", options["categories"]),
            _select(tab, "priority", lang, "admin.f.priority", priorities, value=1),
            _text(tab, "ack", lang, "admin.f.ack", kind="number", step=1),
            _text(tab, "handle", lang, "admin.f.handle", kind="number", step=1),
            html.P(t("admin.help.limits", lang), className="cb-admin-help"),
            html.Hr(),
            _text(tab, "new_code", lang, "admin.f.new_code"),
            _text(tab, "name_en", lang, "admin.f.name_en"),
            _text(tab, "name_zh", lang, "admin.f.name_zh"),
            _select(tab, "sector", lang, "admin.f.sector", sectors),
            _select(tab, "department", lang, "admin.f.department", options["departments"]),
            _labelled(
                t("admin.f.grid_worker_ok", lang),
                dcc.Checklist(id=field_id(tab, "grid_worker_ok"), options=[{"label": "", "value": "yes"}], value=[]),
            ),
            html.P(t("admin.help.category", lang), className="cb-admin-help"),
        ]
    elif tab == "responsibility":
        f = [
            _select(tab, "category", lang, "admin.f.category", options["categories"]),
            _select(tab, "district", lang, "admin.f.district", options["districts"], value=CITY_WIDE),
            _select(tab, "department", lang, "admin.f.department", options["departments"]),
            html.P(t("admin.f.clear", lang), className="cb-admin-help"),
        ]
    elif tab == "duties":
        f = [
            _text(tab, "worker", lang, "admin.f.worker"),
            _select(tab, "categories", lang, "admin.f.duties", options["grid_categories"], value=[], multi=True),
        ]
    return html.Div([*f, _buttons(tab, lang)], className="cb-admin-form")


def _tab_body(engine, tab: str, lang: str, tz: str, options: dict, scope) -> html.Div:
    if tab in admin_audit.LOG_TABS:
        return admin_audit.tab_body(engine, tab, lang, tz)
    extra = []
    if tab == "duties":
        extra = [
            _labelled(
                t("admin.f.search", lang), dcc.Input(id=DUTIES_SEARCH, type="search", debounce=True, className="cb-admin-input")
            )
        ]
    return html.Div(
        [
            *extra,
            table(tab, rows(engine, tab, lang, tz, scope=scope), lang),
            html.P(t("admin.help.select", lang), className="cb-admin-help"),
            _form(tab, lang, options),
            _message(tab),
        ],
        className="cb-admin-tab",
    )


def layout(deps, query: dict, lang: str, scope=None) -> html.Div:
    """The page: header with the nav, then one tab per area (the `tab` query parameter picks the first shown)."""
    engine, settings = deps.engine, deps.settings
    options = choices(engine, lang)
    chosen = query.get("tab") if query.get("tab") in TAB_KEYS else "users"
    return html.Div(
        id=ROOT,
        className="cb-admin",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            html.Header(
                className="cb-top",
                children=[
                    brand(t("admin.title", lang), lang),
                    nav("/admin", lang),
                ],
            ),
            html.Main(
                className="cb-admin-body",
                children=[
                    html.Div(id=SECRET, className="cb-admin-secret", role="alert"),
                    dcc.Tabs(
                        id=TABS,
                        value=chosen,
                        children=[
                            dcc.Tab(
                                label=t(f"admin.tab.{tab}", lang),
                                value=tab,
                                id=f"admin-tab-{tab}",
                                children=_tab_body(engine, tab, lang, settings.timezone, options, scope),
                            )
                            for tab in TAB_KEYS
                        ],
                    ),
                ],
            ),
            dcc.Store(id=LANG, data=lang),
        ],
    )
