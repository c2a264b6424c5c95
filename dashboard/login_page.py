"""The sign-in page (/login), sign-out (/logout) and a wall's kiosk link (/kiosk/<token>): plain HTML, EN/中文, offline.

Failed sign-ins and kiosk links are rate-limited per client address (`limit_sign_ins`, Flask-Limiter, Redis
when the cache is Redis); wrong passwords are throttled per user name and address in the data layer
(data/accounts/signins.py). Signing out is a POST carrying the CSRF token: a link or an image cannot sign
anybody out, and GET /logout only asks.
"""

from __future__ import annotations

import math
import time
import unicodedata
from html import escape
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, make_response, redirect, request, url_for
from limits import parse as parse_limit

from dashboard import access, auth
from dashboard.i18n import LANGS, t
from dashboard.login_html import page_html, page_lang, signout_form
from data.accounts import signins
from data.accounts import users as accounts
from data.errors import AuthenticationFailed, SignInThrottled
from data.times import utc_now

bp = Blueprint("auth", __name__)

MAX_NEXT = 2000
# Browsers delete tab, CR and LF anywhere in a URL, and trim spaces and C0 controls at its ends, before
# following it: `/\t/evil.example` is `//evil.example` to them. safe_next judges what they would follow.
_DROPPED = str.maketrans("", "", "\t\r\n")
_TRIMMED = "".join(chr(c) for c in range(0x21))
# A rate-limited address is written to the sign-in log at most this often (a flood must not flood the store).
_LOG_RATE_LIMITED = parse_limit("1/minute")


def safe_next(raw) -> str:
    """Where to go after signing in: an absolute path on this site, else "/" (never another site).

    Refused: anything but a path opening with one "/" (`//host` and `/\\host` name another site, a
    scheme names itself), a backslash anywhere, any control character left after the browser's own
    clean-up, the sign-in page itself, and overlong values.
    """
    if not isinstance(raw, str) or len(raw) > MAX_NEXT:
        return "/"
    target = raw.translate(_DROPPED).strip(_TRIMMED)
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(unicodedata.category(char) == "Cc" for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/login"):
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
    username = request.form.get("username") or ""
    shown = username.strip()[: signins.NAME_CHARS]
    if not auth._csrf_ok():
        return login_form(lang, next_path, t("auth.expired", lang), shown), 400
    engine = current_app.extensions["citybrain"].engine
    with engine.begin() as conn:
        # Caught inside the transaction: a failed attempt is logged (and throttles) only if committed.
        try:
            user, failure = (
                accounts.authenticate(
                    conn,
                    username,
                    request.form.get("password") or "",
                    address=auth.client_address(),
                    user_agent=auth.client_user_agent(),
                ),
                None,
            )
        except AuthenticationFailed as exc:
            user, failure = None, exc
    if isinstance(failure, SignInThrottled):
        minutes = max(1, math.ceil((failure.until - utc_now()).total_seconds() / 60))
        response = make_response(login_form(lang, next_path, t("auth.throttled", lang).format(minutes=minutes), shown), 429)
        response.headers["Retry-After"] = str(minutes * 60)
        return response
    if failure is not None:
        return login_form(lang, next_path, t("auth.wrong", lang), shown), 401
    auth.sign_in_user(user)
    return redirect(next_path)


@bp.get("/logout")
def logout_page():
    """Asks, changes nothing: a link, an image or a prefetch must not sign anybody out."""
    lang = page_lang()
    if not access.current().is_authenticated:
        return redirect(url_for("auth.login", lang=lang))
    body = (
        f'<h2 class="cb-login-title" id="logout-title">{escape(t("auth.signout_confirm", lang))}</h2>'
        f"{signout_form(lang, auth.csrf_token(), button_id='logout-confirm')}"
        f'<p><a href="/">{escape(t("auth.refused.home", lang))}</a></p>'
    )
    return page_html(lang, body, wall=False, title_key="auth.signout")


@bp.post("/logout")
def logout():
    """Sign out (the gate has checked the CSRF token): the session ends in the store, not only in this browser."""
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
    """Sign a wall display in read-only for the token's unit, then show the wall. A bad token changes
    nothing: whoever is signed in in this browser stays signed in."""
    engine = current_app.extensions["citybrain"].engine
    with engine.begin() as conn:
        row = accounts.resolve_kiosk_token(conn, token)
        if row is None:
            signins.record(
                conn,
                signins.KIOSK_REFUSED,
                username=accounts.kiosk_token_shown(token),
                address=auth.client_address(),
                user_agent=auth.client_user_agent(),
            )
    lang = page_lang()
    if row is None:
        return login_form(lang, "/wall", t("auth.kiosk_invalid", lang)), 403
    auth.sign_in_kiosk(row)
    query = {"lang": request.args["lang"]} if request.args.get("lang") else {}
    return redirect("/wall" + (f"?{urlencode(query)}" if query else ""))


# --- rate limits -----------------------------------------------------------------------------------


def _is_sign_in_attempt() -> bool:
    return (request.endpoint == "auth.login" and request.method == "POST") or request.endpoint == "auth.kiosk"


def _address_key() -> str:
    return f"signin:{auth.client_address()}"


def _rate_limited(limit):
    """The answer once an address has used up its sign-in attempts: the form again, 429, Retry-After."""
    address = auth.client_address()
    if limit.limiter.hit(_LOG_RATE_LIMITED, "citybrain-signin-log", address):
        engine = current_app.extensions["citybrain"].engine
        with engine.begin() as conn:
            signins.record(
                conn,
                signins.RATE_LIMITED,
                username=(request.form.get("username") or "") if request.method == "POST" else "",
                address=address,
                user_agent=auth.client_user_agent(),
            )
    lang = page_lang()
    wait = max(1, math.ceil(limit.reset_at - time.time()))
    next_path = "/wall" if request.endpoint == "auth.kiosk" else safe_next(request.values.get("next"))
    response = make_response(login_form(lang, next_path, t("auth.rate_limited", lang)), 429)
    response.headers["Retry-After"] = str(wait)
    return response


def limit_sign_ins(limiter, rate: str) -> None:
    """Count failed sign-in attempts (POST /login, GET /kiosk/<token> answered with anything but the redirect of a
    successful sign-in) per client address against `rate`, e.g. "20/minute"; past it, every attempt from there
    is refused until the window moves on. Successful sign-ins are not counted: a shift signing in together
    behind one address is never held up."""
    limiter.shared_limit(
        rate,
        scope="signin",
        key_func=_address_key,
        exempt_when=lambda: not _is_sign_in_attempt(),
        deduct_when=lambda response: response.status_code != 302,
        on_breach=_rate_limited,
    )(bp)
