"""Callbacks of the early-warning page (/warnings): the filtered alert list, live, and sensitivity edits (audited).

Thin: the list reads data.warnings.alerts.list_alerts; an edited settings row is one data.warnings.sensitivity.set_sensitivity
call as the signed-in user, and a refusal puts the stored value back in the table with the reason.
"""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, no_update

from dashboard import access, ids
from dashboard.components.alerts_panel import tf
from dashboard.i18n import LANGS, name, t
from dashboard.pages import warnings as page
from data.actors import Actor
from data.errors import CityBrainError
from data.parse import parse_float, parse_id


def save_setting(engine, row: dict, actor: str | Actor, lang: str, tz: str) -> tuple[str, str, list[dict]]:
    """Store one edited settings row; (message, message class, the table's rows as now stored)."""
    from data.warnings.sensitivity import MAX_SENSITIVITY, MIN_SENSITIVITY, set_sensitivity

    try:
        sensitivity = parse_float(row["sensitivity"], "sensitivity", minimum=MIN_SENSITIVITY, maximum=MAX_SENSITIVITY)
        with engine.begin() as conn:
            saved = set_sensitivity(conn, parse_id(row["category_id"], "category id"), sensitivity, bool(row["enabled"]), actor)
    except (CityBrainError, TypeError, KeyError) as exc:
        # The table shows the stored values again: what is on screen is what is in force.
        return tf("warnings.msg.refused", lang, reason=str(exc)), "cb-message cb-message-refused", _rows(engine, lang, tz)
    message = tf(
        "warnings.msg.saved",
        lang,
        category=name(saved, lang),
        sensitivity=f"{saved['sensitivity']:g}",
        enabled=t("warnings.msg.on" if saved["enabled"] else "warnings.msg.off", lang),
    )
    return message, "cb-message cb-message-ok", _rows(engine, lang, tz)  # with who changed it, and when


def _rows(engine, lang: str, tz: str) -> list[dict]:
    return page.settings_rows(page.read_settings(engine), lang, tz)


def register(app, deps) -> None:
    engine, settings = deps.engine, deps.settings
    # Everyone who sees the overview may read every alert (within the jurisdiction); changing a
    # category's sensitivity is configuration: administrators only, checked on each edit.
    access.allow_page("/warnings", access.VIEW)
    access.allow_area("warnings", access.VIEW)

    @app.callback(
        Output(ids.WARNINGS_TABLE, "children"),
        Input(ids.WARNINGS_KIND, "value"),
        Input(ids.WARNINGS_STATUS, "value"),
        Input(page.REFRESH, "data"),
        State(ids.WARNINGS_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def redraw(kind, status, _refresh, config):
        lang = (config or {}).get("lang", settings.lang)
        chosen = page.chosen_filters({"kind": kind, "status": status})
        return page.alerts_table(page.read_list(engine, chosen), lang, settings.timezone)

    @app.callback(
        Output(ids.WARNINGS_MESSAGE, "children"),
        Output(ids.WARNINGS_MESSAGE, "className"),
        Output(ids.WARNINGS_SETTINGS, "rowData"),
        Input(ids.WARNINGS_SETTINGS, "cellValueChanged"),
        State(ids.WARNINGS_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def edit(changed, config):
        """One edited cell: its whole row (sensitivity and on/off) is stored as the signed-in user."""
        if not changed:
            return no_update, no_update, no_update
        lang = (config or {}).get("lang", settings.lang)
        if not access.can(access.ADMIN):
            return t("warnings.msg.not_allowed", lang), "cb-message cb-message-refused", _rows(engine, lang, settings.timezone)
        row = (changed[0] if isinstance(changed, list) else changed).get("data") or {}
        message, css, rows = save_setting(engine, row, access.acting(), lang, settings.timezone)
        return message, css, rows

    @app.callback(
        Output(ids.SHELL_LANG, "data", allow_duplicate=True),
        Input(ids.WARNINGS_LANG_SWITCH, "n_clicks"),
        State(ids.WARNINGS_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def switch_language(n_clicks, config):
        if not n_clicks:
            return no_update
        current = (config or {}).get("lang", settings.lang)
        return LANGS[(LANGS.index(current) + 1) % len(LANGS)] if current in LANGS else LANGS[0]

    app.clientside_callback(
        ClientsideFunction("citybrain", "alertsPoll"),
        Output(page.POLLED, "data"),
        Input(page.POLL, "n_intervals"),
        State(page.WATCH, "data"),
        prevent_initial_call=True,
    )
