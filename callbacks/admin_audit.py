"""Callbacks of the /admin page's log tabs: a new range or filter (or opening the tab) re-reads the table and the CSV link."""

from __future__ import annotations

from dash import Input, Output, State, no_update

from dashboard.pages import admin as page
from dashboard.pages import admin_audit as logs


def register(app, deps) -> None:
    engine, tz = deps.engine, deps.settings.timezone

    def register_tab(tab: str) -> None:
        @app.callback(
            Output(logs.grid_id(tab), "rowData"),
            Output(logs.csv_id(tab), "href"),
            Input(page.TABS, "value"),
            Input(logs.since_id(tab), "value"),
            Input(logs.until_id(tab), "value"),
            Input(logs.filter_id(tab), "value"),
            State(page.LANG, "data"),
            prevent_initial_call=True,
        )
        def refresh(shown_tab, since, until, chosen, lang):
            if shown_tab != tab:  # another tab: this one is read again when it is opened
                return no_update, no_update
            return logs.rows(engine, tab, lang, tz, since, until, chosen), logs.csv_href(tab, since, until, chosen)

    for tab in logs.LOG_TABS:
        register_tab(tab)
