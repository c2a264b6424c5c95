"""Pages by path: each entry renders a page's layout for a path, its query string and the language."""

from __future__ import annotations

from urllib.parse import parse_qsl

from dash import html

from dashboard import access
from dashboard.i18n import t


def _overview(variant: str):
    def render(deps, query: dict, lang: str, bounds=None):
        from dashboard.pages import overview

        return overview.layout(deps, variant, query, lang, bounds=bounds)

    return render


def _dispatch(deps, query: dict, lang: str, bounds=None):
    from dashboard.pages import dispatch

    return dispatch.layout(deps, query, lang)


def _trends(deps, query: dict, lang: str, bounds=None):
    from dashboard.pages import trends

    return trends.layout(deps, query, lang)


def _inbox(deps, query: dict, lang: str, bounds=None):
    from dashboard.pages import inbox

    return inbox.layout(deps, query, lang)


def _warnings(deps, query: dict, lang: str, bounds=None):
    from dashboard.pages import warnings

    return warnings.layout(deps, query, lang)


def _admin(deps, query: dict, lang: str, bounds=None):
    from dashboard.pages import admin

    return admin.layout(deps, query, lang, scope=access.current().scope)


# path -> renderer(deps, query, lang, bounds=None). Other areas add their pages here, and their paths to
# dashboard/access.PAGE_PATHS (the gate and the nav read that list; a page without a declared permission needs ADMIN).
PAGES = {
    "/": _overview("desk"),
    "/wall": _overview("wall"),
    "/dispatch": _dispatch,
    "/trends": _trends,
    "/inbox": _inbox,
    "/admin": _admin,
    "/warnings": _warnings,
}


def render(deps, pathname: str | None, search: str | None, lang: str, bounds=None, keep: dict | None = None):
    """The page for a path (a plain 'not found' page for unknown paths); `keep` overrides the query string."""
    path = (pathname or "/").rstrip("/") or "/"
    query = dict(parse_qsl((search or "").lstrip("?")))
    query.update({k: "" if v is None else str(v) for k, v in (keep or {}).items()})
    page = PAGES.get(path)
    if page is None:
        return html.Div([html.H1("404"), html.A(t("overview.title", lang), href="/")], className="cb-not-found")
    if not access.may_open(path):  # the server refuses the page's data too; this says so instead of a broken page
        return html.Div(
            [
                html.H1(t("auth.refused.title", lang)),
                html.P(t("auth.refused.body", lang)),
                html.A(t("auth.refused.home", lang), href="/"),
            ],
            className="cb-not-found",
            id="auth-refused",
        )
    return page(deps, query, lang, bounds=bounds)
