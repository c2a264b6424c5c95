"""The page shell: the URL, the chosen language (kept in the browser) and the slot the routed page fills."""

from __future__ import annotations

from dash import dcc, html

from dashboard import ids


def build_layout(deps):
    """The shell as a function, so nothing is read at import time; callbacks/shell.py routes into it."""

    def layout():
        return html.Div(
            className="cb-shell",
            children=[
                dcc.Location(id=ids.SHELL_LOCATION, refresh=False),
                dcc.Store(id=ids.SHELL_LANG, storage_type="local"),
                dcc.Store(id=ids.SHELL_CARRY),
                html.Div(id=ids.SHELL_PAGE, className="cb-page"),
            ],
        )

    return layout
