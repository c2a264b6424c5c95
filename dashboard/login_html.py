"""The sign-in pages' plain HTML frame (EN/中文) and the page shown to a user whose role may not open a page."""

from __future__ import annotations

from html import escape

from flask import current_app, request, url_for

from dashboard import access
from dashboard.i18n import normalise_lang, t

CSRF_FIELD = "csrf_token"  # the form field carrying the CSRF token (sign-in and sign-out forms)


def page_lang() -> str:
    """The language asked for (?lang=, or the form's field), else the configured one."""
    asked = request.values.get("lang")
    if asked:
        return normalise_lang(asked)
    return normalise_lang(current_app.extensions["citybrain"].settings.lang)


def page_html(lang: str, body: str, wall: bool, title_key: str = "auth.title") -> str:
    """A whole sign-in-style page around `body` (escaped HTML), themed for the wall or the desk."""
    theme = "cb-login-wall" if wall else "cb-login-desk"
    return (
        "<!DOCTYPE html>"
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(t(title_key, lang))} · {escape(t('app.title', lang))}</title>"
        '<link rel="stylesheet" href="/assets/login.css"></head>'
        f'<body class="cb-login-body {theme}"><main class="cb-login">'
        f'<h1 class="cb-login-app">{escape(t("app.title", lang))}</h1>{body}</main></body></html>'
    )


def signout_form(lang: str, csrf_token: str, button_id: str = "signout-button", css_class: str = "cb-signout-form") -> str:
    """A sign-out button: a POST form carrying the CSRF token (signing out changes state, so no link does it)."""
    return (
        f'<form method="post" action="{escape(url_for("auth.logout"))}" class="{escape(css_class)}">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token)}">'
        f'<button type="submit" id="{escape(button_id)}">{escape(t("auth.signout", lang))}</button></form>'
    )


def refused_page(message: str, csrf_token: str) -> str:
    """The page a signed-in user sees for a page their role may not open."""
    lang = page_lang()
    who = access.current()
    body = (
        f'<h2 class="cb-login-title" id="refused-title">{escape(t("auth.refused.title", lang))}</h2>'
        f'<p class="cb-login-message" role="alert">{escape(t("auth.refused.body", lang))}</p>'
        f"<p>{escape(t('auth.signed_in_as', lang))}: <b>{escape(getattr(who, 'display_name', ''))}</b> "
        f"({escape(t(f'auth.role.{who.role}', lang))})</p>"
        f'<p><a href="/">{escape(t("auth.refused.home", lang))}</a></p>'
        f"{signout_form(lang, csrf_token)}"
    )
    return page_html(lang, body, wall=False, title_key="auth.refused.title")
