"""Callbacks of the leaders' review (/trends): controls -> content; also mounts its export and brief routes."""

from __future__ import annotations

from dash import Input, Output, State, html

from dashboard import jurisdiction
from dashboard.i18n import t
from dashboard.pages import trends as page
from data.errors import ValidationError


def register(app, deps) -> None:
    from dashboard import exports

    # The export and brief routes live beside the page they serve.
    if "trends_exports" not in app.server.blueprints:
        app.server.register_blueprint(exports.bp)

    @app.callback(
        Output(page.CONTENT, "children"),
        Output(page.BRIEF_LINK, "href"),
        Input(page.PERIOD, "value"),
        Input(page.DATES, "start_date"),
        Input(page.DATES, "end_date"),
        Input(page.SCOPE, "value"),
        Input(page.GRAN, "value"),
        Input(page.RATE, "value"),
        State(page.LANG, "data"),
        prevent_initial_call=True,
    )
    def update(period, first, last, scope, gran, rate, lang):
        query = {"period": period, "from": first, "to": last, "scope": scope, "gran": gran}
        try:
            choice = jurisdiction.clamp_choice(deps.engine, page.parse_choice(query))
        except ValidationError as error:
            return html.Div(t("trends.bad_input", lang).format(error=error), className="cb-error"), "/trends/brief"
        body = page.content(deps.engine, choice, lang, deps.settings.timezone, rate=rate or "on_time_rate")
        return body, f"/trends/brief?{choice.query(lang)}"
