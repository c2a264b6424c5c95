"""Shell callbacks: route the URL to a page, in the chosen language."""

from __future__ import annotations

from urllib.parse import parse_qsl

from dash import Input, Output, State

from dashboard import ids
from dashboard.i18n import LANGS, normalise_lang
from dashboard.pages import render


def choose_lang(search: str | None, stored: str | None, default: str) -> str:
    """?lang= in the URL wins, then the language the browser remembers, then the configured default."""
    asked = dict(parse_qsl((search or "").lstrip("?"))).get("lang")
    if asked and asked[:2].lower() in LANGS:
        return normalise_lang(asked)
    return normalise_lang(stored or default)


def register(app, deps) -> None:
    @app.callback(
        Output(ids.SHELL_PAGE, "children"),
        Input(ids.SHELL_LOCATION, "pathname"),
        Input(ids.SHELL_LANG, "data"),
        State(ids.SHELL_LOCATION, "search"),
        State(ids.SHELL_CARRY, "data"),
    )
    def route(pathname, stored_lang, search, carry):
        carry = carry or {}
        # A language switch outranks even ?lang= in the URL: it is the user's latest word.
        lang = normalise_lang(carry["lang"]) if carry.get("lang") else choose_lang(search, stored_lang, deps.settings.lang)
        # Re-rendered for a language switch: keep what the user chose and where the map looked.
        kept = {k: v for k, v in (carry.get("state") or {}).items() if k in ("scope", "metric", "heat") and v is not None}
        return render(deps, pathname, search, lang, bounds=_bbox(carry.get("bounds")), keep=kept)


def _bbox(bounds):
    """The current map's bounds (kept across a language switch), as (minlon, minlat, maxlon, maxlat)."""
    from layers.boundaries import leaflet_bounds_to_bbox

    try:
        return leaflet_bounds_to_bbox(bounds)
    except (TypeError, ValueError):
        return None
