"""Callbacks of the administration page (/admin): a form's button runs one data/accounts/admin/ change as the signed-in admin.

`perform` is the plain function behind every button (tests call it without Dash): it checks the
caller is an administrator, runs the change in one transaction and answers with the message to
show; data-layer errors become that message, and the transaction stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import ALL, Input, Output, State, ctx, no_update
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dashboard import access
from dashboard.i18n import t
from dashboard.pages import admin as page
from data import schema, store
from data.accounts.admin.categories import create_category, list_categories, set_category_limits, update_category
from data.accounts.admin.checks import CITY_WIDE, PRIORITIES
from data.accounts.admin.departments import create_department, set_department_webhook, update_department
from data.accounts.admin.duties import set_worker_duties
from data.accounts.admin.keys import create_api_key, revoke_api_key
from data.accounts.admin.responsibility import set_responsibility
from data.accounts.admin.users import create_user, reset_password, update_user
from data.actors import Actor
from data.errors import CityBrainError, PermissionDenied
from data.incidents.webhook_targets import PUBLIC_ONLY, WebhookTargets


@dataclass(frozen=True)
class Outcome:
    """What a button did: whether it stored a change, the message, and a secret to show once (new key, webhook)."""

    ok: bool
    message: str
    secret: str | None = None
    secret_label: str | None = None


def admin_actor() -> Actor:
    """The signed-in administrator as the data layer's Actor (its name for the audit log, its jurisdiction,
    which data/accounts/admin/ checks every change against); PermissionDenied for anyone else."""
    if not access.can(access.ADMIN):
        raise PermissionDenied("only administrators may change this")
    return access.acting()


def admin_scope():
    """The signed-in admin's jurisdiction (None = the city): duty lists shown are limited to it."""
    return access.current().scope


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


# (tab, action) -> fields it needs, in the form's vocabulary.
REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("users", "create"): ("username", "password", "role"),
    ("users", "save"): ("username", "role"),
    ("users", "reset_password"): ("username", "password"),
    ("users", "deactivate"): ("username",),
    ("users", "activate"): ("username",),
    ("keys", "create"): ("name", "scopes"),
    ("keys", "revoke"): ("name",),
    ("departments", "create"): ("code", "name_en", "name_zh"),
    ("departments", "save"): ("code",),
    ("departments", "webhook"): ("code", "webhook"),
    ("departments", "webhook_off"): ("code",),
    ("departments", "deactivate"): ("code",),
    ("departments", "activate"): ("code",),
    ("categories", "limits"): ("code", "priority", "ack", "handle"),
    ("categories", "create"): ("new_code", "name_en", "name_zh", "sector", "department"),
    ("categories", "save"): ("code",),
    ("responsibility", "save"): ("category",),
    ("duties", "save"): ("worker",),
}
_LABELS = {
    "username": "admin.f.username",
    "password": "admin.f.password",
    "role": "admin.f.role",
    "name": "admin.f.key_name",
    "scopes": "admin.f.scopes",
    "code": "admin.f.code",
    "name_en": "admin.f.name_en",
    "name_zh": "admin.f.name_zh",
    "webhook": "admin.f.webhook",
    "priority": "admin.f.priority",
    "ack": "admin.f.ack",
    "handle": "admin.f.handle",
    "new_code": "admin.f.new_code",
    "sector": "admin.f.sector",
    "department": "admin.f.department",
    "category": "admin.f.category",
    "worker": "admin.f.worker",
}


def _change(conn, actor: str | Actor, tab: str, action: str, f: dict, webhook_targets: WebhookTargets = PUBLIC_ONLY):
    """Run one change; returns (what was changed, a secret to show once or None)."""
    if tab == "users":
        user = f["username"]
        if action == "create":
            create_user(
                conn,
                actor,
                user,
                f["password"],
                f["role"],
                unit_code=f.get("unit"),
                department_code=f.get("department") if f["role"] == "department" else None,
                display_name=f.get("display_name") or None,
            )
            return user, None
        if action == "save":
            # A blank field keeps what the user has: an empty jurisdiction must never widen it to the city.
            changes = {"role": f["role"]}
            if not _blank(f.get("unit")):
                changes["unit_code"] = f["unit"]
            if f["role"] != "department":
                changes["department_code"] = None  # only a department user acts for a department
            elif not _blank(f.get("department")):
                changes["department_code"] = f["department"]
            if not _blank(f.get("display_name")):
                changes["display_name"] = f["display_name"]
            update_user(conn, actor, user, **changes)
        elif action == "reset_password":
            reset_password(conn, actor, user, f["password"])
        else:
            update_user(conn, actor, user, active=action == "activate")
        return user, None
    if tab == "keys":
        if action == "create":
            new = create_api_key(
                conn,
                actor,
                f["name"],
                f["scopes"],
                source=f.get("source") or None,
                department_code=f.get("department") or None,
                rate_limit=f.get("rate_limit") or None,
                unit_code=f.get("unit"),
            )
            return new.key.name, new.secret
        return revoke_api_key(conn, actor, f["name"]).name, None
    if tab == "departments":
        code = f["code"]
        if action == "create":
            create_department(conn, actor, code, f["name_en"], f["name_zh"], f.get("kind") or "department")
        elif action == "save":
            update_department(
                conn, actor, code, name_en=f.get("name_en") or None, name_zh=f.get("name_zh") or None, kind=f.get("kind") or None
            )
        elif action == "webhook":
            return code, set_department_webhook(conn, actor, code, f["webhook"], targets=webhook_targets)
        elif action == "webhook_off":
            set_department_webhook(conn, actor, code, None)
        else:
            update_department(conn, actor, code, active=action == "activate")
        return code, None
    if tab == "categories":
        if action == "limits":
            set_category_limits(conn, actor, f["code"], f["priority"], f["ack"], f["handle"])
            return f"{f['code']} P{f['priority']}", None
        grid_ok = "yes" in (f.get("grid_worker_ok") or [])
        if action == "create":
            create_category(
                conn, actor, f["new_code"], f["name_en"], f["name_zh"], f["sector"], f["department"], grid_worker_ok=grid_ok
            )
            return f["new_code"], None
        update_category(
            conn,
            actor,
            f["code"],
            name_en=f.get("name_en") or None,
            name_zh=f.get("name_zh") or None,
            sector=f.get("sector") or None,
            grid_worker_ok=grid_ok,
        )
        if not _blank(f.get("department")):
            set_responsibility(conn, actor, f["code"], None, f["department"])
        return f["code"], None
    if tab == "responsibility":
        district = f.get("district")
        district = None if _blank(district) or district == CITY_WIDE else district
        set_responsibility(conn, actor, f["category"], district, f.get("department") or None)
        return f"{f['category']} @ {district or CITY_WIDE}", None
    if tab == "duties":
        set_worker_duties(conn, actor, f["worker"], f.get("categories") or [])
        return f["worker"], None
    raise ValueError(f"no admin action {tab}:{action}")


def perform(
    engine,
    tab: str,
    action: str,
    form: dict,
    lang: str,
    actor: str | Actor | None = None,
    webhook_targets: WebhookTargets = PUBLIC_ONLY,
) -> Outcome:
    """Run the button `action` of `tab` with the form's values as the signed-in admin (or `actor`); the message to show.

    `webhook_targets` is CITYBRAIN_WEBHOOK_ALLOW parsed: where a department's webhook may point."""
    missing = [_LABELS.get(k, k) for k in REQUIRED.get((tab, action), ()) if _blank(form.get(k))]
    if missing:
        return Outcome(False, t("admin.msg.need", lang).format(fields=", ".join(t(k, lang) for k in missing)))
    try:
        who = actor or admin_actor()
    except PermissionDenied:
        return Outcome(False, t("admin.msg.denied", lang))
    try:
        with engine.begin() as conn:
            before = _head(conn)
            what, secret = _change(conn, who, tab, action, form, webhook_targets)
            changed = _head(conn) != before
    except CityBrainError as exc:  # the data layer's PermissionDenied too: it says why (a city-wide record)
        return Outcome(False, t("admin.msg.refused", lang).format(reason=exc))
    except IntegrityError:  # two admins created the same code at once: the second is refused whole
        return Outcome(False, t("admin.msg.refused", lang).format(reason=t("admin.msg.race", lang)))
    if not changed:
        return Outcome(True, t("admin.msg.unchanged", lang))
    label = None
    if secret and tab == "keys":
        label = t("admin.msg.secret", lang).format(name=what)
    elif secret:
        label = t("admin.msg.webhook_secret", lang).format(code=what)
    return Outcome(True, t("admin.msg.done", lang).format(what=what), secret, label)


def _head(conn) -> int:
    return conn.execute(select(func.coalesce(func.max(schema.admin_events.c.id), 0))).scalar_one()


def category_form(engine, code: str | None, priority) -> dict:
    """The category form's values for a chosen category and priority (its current limits and fields)."""
    if not code:
        return {}
    with store.reading(engine) as conn:
        found = next((c for c in list_categories(conn) if c["code"] == code), None)
    if found is None:
        return {}
    p = priority if priority in PRIORITIES else 1
    return {
        "ack": found[f"ack_{p}"],
        "handle": found[f"handle_{p}"],
        "name_en": found["name_en"],
        "name_zh": found["name_zh"],
        "sector": found["sector"],
        "department": found["department"],
        "grid_worker_ok": ["yes"] if found["grid_worker_ok"] else [],
    }


# What a selected table row puts in the form: tab -> {form field: row field}.
ROW_TO_FORM = {
    "users": {"username": "username", "display_name": "display_name", "role": "role", "unit": "unit", "department": "department"},
    "keys": {"name": "name"},
    "departments": {"code": "code", "name_en": "name_en", "name_zh": "name_zh", "kind": "kind", "webhook": "webhook_url"},
    "categories": {"code": "code"},
    "responsibility": {"category": "category", "district": "district", "department": "department"},
    "duties": {"worker": "code", "categories": "duties"},
}


def row_to_form(tab: str, row: dict) -> list:
    """The form values for a selected row (in ROW_TO_FORM order)."""
    values = []
    for field, column in ROW_TO_FORM[tab].items():
        value = row.get(column)
        if tab == "users" and field == "unit":
            value = value or CITY_WIDE
        if tab == "responsibility" and field == "district":
            value = value or CITY_WIDE
        if tab == "duties" and field == "categories":
            value = (value or "").split()
        values.append(value)
    return values


def register(app, deps) -> None:
    engine, tz = deps.engine, deps.settings.timezone
    webhook_targets = WebhookTargets.parse(deps.settings.webhook_allow)

    def register_tab(tab: str) -> None:
        fields = page.FIELDS[tab]
        outputs = [
            Output(page.message_id(tab), "children"),
            Output(page.grid_id(tab), "rowData"),
            Output(page.SECRET, "children", allow_duplicate=True),
        ]
        if tab == "users":
            outputs.append(Output(page.field_id(tab, "password"), "value"))  # never left in the form

        @app.callback(
            *outputs,
            Input({"type": page.act_type(tab), "index": ALL}, "n_clicks"),
            *(State(page.field_id(tab, f), "value") for f in fields),
            State(page.LANG, "data"),
            prevent_initial_call=True,
        )
        def act(clicks, *values):
            *form_values, lang = values
            if not ctx.triggered_id or not any(clicks or ()):
                return (no_update,) * len(outputs)
            form = dict(zip(fields, form_values, strict=True))
            outcome = perform(engine, tab, ctx.triggered_id["index"], form, lang, webhook_targets=webhook_targets)
            from dash import html

            message = html.Span(outcome.message, className="cb-admin-ok" if outcome.ok else "cb-admin-error")
            secret = (
                [html.Span(outcome.secret_label), html.Code(outcome.secret, className="cb-admin-secret-value")]
                if outcome.secret
                else no_update
            )
            data = page.rows(engine, tab, lang, tz, scope=admin_scope()) if outcome.ok else no_update
            answer = [message, data, secret]
            if tab == "users":
                answer.append("")
            return tuple(answer)

        mapping = ROW_TO_FORM[tab]

        @app.callback(
            *(Output(page.field_id(tab, f), "value", allow_duplicate=True) for f in mapping),
            Input(page.grid_id(tab), "selectedRows"),
            prevent_initial_call=True,
        )
        def fill(selected):
            values = row_to_form(tab, selected[0]) if selected else [no_update] * len(mapping)
            # One output takes its value bare; several take a tuple.
            return values[0] if len(values) == 1 else tuple(values)

    for tab in page.FIELDS:
        register_tab(tab)

    category_fields = ("ack", "handle", "name_en", "name_zh", "sector", "department", "grid_worker_ok")

    @app.callback(
        *(Output(page.field_id("categories", f), "value") for f in category_fields),
        Input(page.field_id("categories", "code"), "value"),
        Input(page.field_id("categories", "priority"), "value"),
        prevent_initial_call=True,
    )
    def fill_category(code, priority):
        values = category_form(engine, code, priority)
        if not values:
            return (no_update,) * len(category_fields)
        return tuple(values[f] for f in category_fields)

    @app.callback(
        Output(page.grid_id("duties"), "rowData", allow_duplicate=True),
        Input(page.DUTIES_SEARCH, "value"),
        State(page.LANG, "data"),
        prevent_initial_call=True,
    )
    def search_workers(search, lang):
        return page.rows(engine, "duties", lang, tz, search=search, scope=admin_scope())
