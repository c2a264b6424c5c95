"""The sign-in page (/login), sign-out (/logout) and a wall's kiosk link (/kiosk/<token>): plain HTML, EN/中文, offline."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, request, url_for

from dashboard import access, auth
from dashboard.i18n import LANGS, t
from dashboard.login_html import page_html, page_lang
from data.accounts import users as accounts
from data.errors import AccountLocked, AuthenticationFailed
from data.times import utc_now

bp = Blueprint("auth", __name__)


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path on this server only (never another site)."""
    target = (raw or "").strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target or target.startswith("/login"):
        return "/"
    return target


def login_form(lang: str, next_path: str, message: str = "", username: str = "") -> str:
    other = LANGS[(LANGS.index(lang) + 1) % len(LANGS)]
    switch = url_for("auth.login", **{"next": next_path, "lang": other})
    alert = f'<p class="cb-login-message" role="alert" id="login-message">{escape(message)}</p>' if message else ""
    body = (
        f'<h2 class="cb-login-title">{escape(t("auth.title", lang))}</h2>{alert}'
        f'<form method="post" action="{escape(url_for("auth.login"))}" class="cb-login-form" id="login-form">'
        f'<input type="hidden" name="{auth.CSRF_FIELD}" value="{escape(auth.csrf_token())}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<label for="login-username">{escape(t("auth.username", lang))}</label>'
        f'<input id="login-username" name="username" autocomplete="username" required autofocus value="{escape(username)}">'
        f'<label for="login-password">{escape(t("auth.password", lang))}</label>'
        '<input id="login-password" name="password" type="password" autocomplete="current-password" required>'
        f'<button type="submit" id="login-submit">{escape(t("auth.submit", lang))}</button></form>'
        f'<p class="cb-login-lang"><a href="{escape(switch)}" id="login-lang">{escape(t("lang.switch", lang))}</a></p>'
    )
    return page_html(lang, body, wall=next_path.startswith("/wall"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    lang = page_lang()
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        notice = {"out": "auth.signed_out", "ended": "auth.session_ended"}.get(request.args.get("why", ""))
        return login_form(lang, next_path, t(notice, lang) if notice else "")
    username = (request.form.get("username") or "").strip()
    if not auth._csrf_ok():
        return login_form(lang, next_path, t("auth.expired", lang), username), 400
    engine = current_app.extensions["citybrain"].engine
    with engine.begin() as conn:
        # Caught inside the transaction: a failed attempt's count must be committed, not rolled back.
        try:
            user, failure = accounts.authenticate(conn, username, request.form.get("password") or ""), None
        except AuthenticationFailed as exc:
            user, failure = None, exc
    if isinstance(failure, AccountLocked):
        minutes = max(1, int((failure.locked_until - utc_now()).total_seconds() + 59) // 60)
        return login_form(lang, next_path, t("auth.locked", lang).format(minutes=minutes), username), 429
    if failure is not None:
        return login_form(lang, next_path, t("auth.wrong", lang), username), 401
    auth.sign_in(access.principal_for_user(user))
    return redirect(next_path)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    lang = page_lang()
    auth.sign_out()
    response = redirect(url_for("auth.login", why="out", lang=lang))
    response.delete_cookie(auth.CSRF_COOKIE, path="/")
    return response


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on every page, the sign-in page too: Dash's icon, for anyone."""
    return redirect("/_favicon.ico", code=301)


@bp.get("/kiosk/<token>")
def kiosk(token: str):
    """Sign a wall display in read-only for the token's unit, then show the wall."""
    engine = current_app.extensions["citybrain"].engine
    with engine.begin() as conn:
        row = accounts.resolve_kiosk_token(conn, token)
    lang = page_lang()
    if row is None:
        auth.sign_out()
        return login_form(lang, "/wall", t("auth.kiosk_invalid", lang)), 403
    auth.sign_in(access.principal_for_kiosk(row))
    query = {"lang": request.args["lang"]} if request.args.get("lang") else {}
    return redirect("/wall" + (f"?{urlencode(query)}" if query else ""))
