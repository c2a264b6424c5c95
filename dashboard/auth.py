"""Sign-in and enforcement: Flask-Login sessions kept in the store, the deny-by-default gate on every request, CSRF.

A session is a row of data/accounts/sessions.py: the cookie's id is `s:<key>`, looked up on every request,
so signing out (or a new password, deactivation, an expired session, a revoked kiosk link) ends it for
every copy of the cookie.

Every request passes `_gate` before its view runs:
- public endpoints (the sign-in page, /healthz, static code and styles) pass;
- the API blueprints (/api/v1, /open311) pass to their own API-key checks and are exempt from CSRF;
- everything else needs a signed-in principal holding the endpoint's permission (`requires(...)`
  on a view, ENDPOINT_PERMISSIONS, BLUEPRINT_PERMISSIONS; anything unlisted needs ADMIN);
- a page (the Dash index at any path) needs its page's permission (PAGE_PERMISSIONS; unlisted: ADMIN);
- a Dash callback (/_dash-update-component) needs the permission of the area of every component
  it writes (AREA_PERMISSIONS by the id's `<area>-` prefix; unlisted: ADMIN);
- every POST/PUT/PATCH/DELETE outside the API carries the session's CSRF token, as the
  `X-CSRFToken` header (Dash's renderer sends it from the `_csrf_token` cookie) or a form field.

The permissions, the role/page/area tables and the principals live in dashboard/access.py. Jurisdiction
(the user's unit) is applied by the reads through dashboard/jurisdiction.py.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from datetime import timedelta

from flask import Flask, current_app, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, login_user, logout_user
from sqlalchemy.exc import SQLAlchemyError

from dashboard.access import (
    ADMIN,
    API,
    AREA_PERMISSIONS,
    PUBLIC,
    SIGNED_IN,
    TRENDS,
    VIEW,
    Anonymous,
    Principal,
    current,
    page_permission,
    principal_for_kiosk,
    principal_for_user,
)
from dashboard.login_html import CSRF_FIELD, refused_page
from data import store
from data.accounts import sessions, signins
from data.errors import NotFound, StoreUnavailable

log = logging.getLogger(__name__)

# --- what the gate checks --------------------------------------------------------------------------

# Blueprints and single endpoints -> permission. Unlisted: ADMIN.
BLUEPRINT_PERMISSIONS: dict[str, str] = {
    "api_v1": API,
    "open311": API,
    "geo": VIEW,
    "live": VIEW,
    "trends_exports": TRENDS,
    "auth": PUBLIC,
}
ENDPOINT_PERMISSIONS: dict[str, str] = {
    "healthz": PUBLIC,  # counts only, for load balancers
    "readyz": PUBLIC,  # store, migrations and job heartbeats: for load balancers and operators
    "static": PUBLIC,
    "_dash_assets.static": PUBLIC,  # the app's own CSS/JS (the sign-in page uses them): code, no data
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,  # library code
    "/_favicon.ico": PUBLIC,
    "/_dash-layout": SIGNED_IN,
    "/_dash-dependencies": SIGNED_IN,
    "/_reload-hash": SIGNED_IN,
    "/_dash-update-component": SIGNED_IN,  # then per callback, by area
    "/": SIGNED_IN,  # then per page
    "/<path:path>": SIGNED_IN,
}
DASH_PAGE_ENDPOINTS = frozenset({"/", "/<path:path>"})
CALLBACK_ENDPOINT = "/_dash-update-component"
API_PREFIXES = ("/api/", "/open311/")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSRF_COOKIE = "_csrf_token"  # the cookie Dash's renderer reads
CSRF_HEADER = "X-CSRFToken"  # the header it sends
_CSRF_KEY = "_csrf"
_SIGNED_AT = "_signed_at"
SESSION_KIND = "s"  # the cookie's session id is "s:<key>", the key of a row of data/accounts/sessions.py
SIGNED_OUT_HEADER = "X-CityBrain-Signed-Out"  # tells the browser script to show the sign-in page

# --- sessions ------------------------------------------------------------------------------------


def _load(session_id: str) -> Principal | None:
    engine = current_app.extensions["citybrain"].engine
    kind, _, key = session_id.partition(":")
    try:
        if kind != SESSION_KIND:  # a cookie from before sessions were kept in the store, or a forged one
            return None
        with store.reading(engine) as conn:
            found = sessions.resolve_session(conn, key)
        if found is None:
            return None
        if sessions.needs_touch(found):
            _note_use(engine, found)
        if found["kiosk"] is not None:
            return principal_for_kiosk(found["kiosk"], key)
        return principal_for_user(found["user"], key)
    except (NotFound, ValueError):
        return None
    except SQLAlchemyError as exc:
        # The store is down: nobody can be checked, so nobody is let in, but nobody is signed out either
        # (a kiosk wall has no password to sign in again): the request is answered 503, to be retried.
        log.warning("could not load the signed-in principal: %s", type(exc).__name__)
        raise StoreUnavailable("the store is not answering; try again in a moment") from exc
    return None


def _note_use(engine, found: dict) -> None:
    """Write down when a session was last used; best effort: a busy store must not refuse the request for it."""
    try:
        with engine.begin() as conn:
            sessions.touch_session(conn, found)
    except SQLAlchemyError as exc:
        log.info("could not note a session's use: %s", type(exc).__name__)


def still_valid(engine, session_id: str) -> bool | None:
    """Whether a signed-in principal still may be (session not ended or expired, user active and unchanged,
    kiosk token not revoked): long-lived responses (the live stream) ask this now and then. None when the
    store cannot be asked: that is not a sign-out."""
    kind, _, key = session_id.partition(":")
    try:
        with store.reading(engine) as conn:
            return kind == SESSION_KIND and sessions.resolve_session(conn, key) is not None
    except (NotFound, ValueError):
        return False
    except SQLAlchemyError:
        return None
    return False


def client_address() -> str:
    """The address this request came from, as the sign-in log, the sessions and the sign-in rate limit
    see it (the proxy's, behind a proxy that is not configured to pass it on)."""
    return (request.remote_addr or "")[:64]


def client_user_agent() -> str:
    """The browser this request says it is, for the sign-in log (truncated there)."""
    return request.headers.get("User-Agent") or ""


def sign_in_user(user: dict) -> None:
    """Start a fresh session for `user`, lasting CITYBRAIN_SESSION_HOURS (its row in the store, a new cookie
    and CSRF token: no fixation)."""
    lifetime = timedelta(seconds=current_app.config["CITYBRAIN_SESSION_SECONDS"])
    with _store().begin() as conn:
        _end_current(conn, "replaced")
        key = sessions.start_session(conn, user=user, lifetime=lifetime, address=client_address())
    _start(principal_for_user(user, key))


def sign_in_kiosk(token: dict) -> None:
    """Start a fresh session for a wall's kiosk token, open until signed out or the token is revoked."""
    with _store().begin() as conn:
        _end_current(conn, "replaced")
        key = sessions.start_session(conn, kiosk_token_id=token["id"], address=client_address())
        signins.record(
            conn,
            signins.KIOSK_SIGNED_IN,
            username=f"kiosk:{token['label']}",
            address=client_address(),
            user_agent=client_user_agent(),
        )
    _start(principal_for_kiosk(token, key))


def _start(principal: Principal) -> None:
    session.clear()
    session.permanent = True
    session[_SIGNED_AT] = time.time()
    login_user(principal)
    session[_CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out() -> None:
    """End this browser's session in the store (every copy of its cookie stops working), log it, clear the cookie."""
    who = current()
    if who.is_authenticated:
        with _store().begin() as conn:
            ended = _end_current(conn, sessions.SIGNED_OUT)
            if ended is not None:
                signins.record(
                    conn,
                    signins.SIGNED_OUT,
                    username=who.name,
                    user_id=ended["user_id"],
                    address=client_address(),
                    user_agent=client_user_agent(),
                )
    logout_user()
    session.clear()


def _end_current(conn, reason: str) -> dict | None:
    """End the session this request signed in with, if any (signing in again replaces it)."""
    who = current()
    kind, _, key = (who.get_id() if who.is_authenticated else "").partition(":")
    return sessions.end_session(conn, key, reason) if kind == SESSION_KIND else None


def _store():
    return current_app.extensions["citybrain"].engine


# --- CSRF -----------------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(_CSRF_KEY)
    if not token:
        token = session[_CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get(_CSRF_KEY)
    if not expected:
        return False
    presented = request.headers.get(CSRF_HEADER) or ""
    if not presented and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        presented = request.form.get(CSRF_FIELD, "")
    return bool(presented) and hmac.compare_digest(str(presented), str(expected))


# --- the gate ------------------------------------------------------------------------------------


def endpoint_permission(endpoint: str | None) -> str:
    """The permission an endpoint needs (ADMIN when nobody declared one: deny by default)."""
    if endpoint is None:  # 404s and 405s: the API answers its own; elsewhere, say nothing to strangers
        return API if request.path.startswith(API_PREFIXES) else SIGNED_IN
    view = current_app.view_functions.get(endpoint)
    declared = getattr(view, "citybrain_permission", None)
    if declared:
        return declared
    if endpoint in ENDPOINT_PERMISSIONS:
        return ENDPOINT_PERMISSIONS[endpoint]
    blueprint = endpoint.rpartition(".")[0]
    return BLUEPRINT_PERMISSIONS.get(blueprint, ADMIN)


def endpoint_permission_for(server: Flask, endpoint: str | None) -> str:
    """endpoint_permission outside a request (tests enumerate the url_map with it)."""
    with server.test_request_context():
        return endpoint_permission(endpoint)


def callback_areas(body) -> set[str]:
    """The areas of the components a Dash callback request writes to."""
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if isinstance(outputs, dict):
        outputs = [outputs]
    areas: set[str] = set()
    for output in outputs if isinstance(outputs, list) else []:
        if isinstance(output, list):  # pattern-matching ALL outputs arrive as lists
            output = output[0] if output else {}
        component = output.get("id") if isinstance(output, dict) else None
        if isinstance(component, dict):
            component = component.get("type")
        areas.add(str(component or "").split("-", 1)[0])
    if not areas:  # an unreadable request: only an admin's passes the gate (then Dash refuses it)
        areas.add("")
    return areas


def callback_permissions(body) -> set[str]:
    return {AREA_PERMISSIONS.get(area, ADMIN) for area in callback_areas(body)}


def _refuse(status: int, message: str):
    wants_html = (
        request.method == "GET"
        and request.accept_mimetypes.accept_html
        and not request.path.startswith(("/_dash", "/geo/", "/live/"))
    )
    if status == 401 and wants_html:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if wants_html:
        return refused_page(message, csrf_token()), status
    body = {"error": "signed_out" if status == 401 else "forbidden", "message": message}
    if request.path.startswith("/geo/"):
        # Leaflet layers fetch these URLs themselves and map over `features`: an empty collection keeps
        # a wall whose session just ended from throwing while it is sent to the sign-in page.
        body |= {"type": "FeatureCollection", "features": []}
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers[SIGNED_OUT_HEADER] = "1"
    return response


def _gate():
    if request.path.rstrip("/") == "/wall" and request.args.get("kiosk"):
        # A wall's kiosk link: sign in by the token, then show the wall without it in the address bar.
        return redirect(url_for("auth.kiosk", token=request.args["kiosk"]))
    permission = endpoint_permission(request.endpoint)
    if permission == PUBLIC:
        if request.method in UNSAFE_METHODS and request.endpoint != "auth.login" and not _csrf_ok():
            return _refuse(403, "the form is out of date (CSRF token missing or wrong); reload the page")
        return None
    if permission == API:
        return None
    who = current()
    if not who.is_authenticated:
        return _refuse(401, "sign in first")
    if request.method in UNSAFE_METHODS and not _csrf_ok():
        return _refuse(403, "CSRF token missing or wrong; reload the page")
    needed = {permission}
    if request.endpoint in DASH_PAGE_ENDPOINTS:
        needed.add(page_permission(request.path))
    elif request.endpoint == CALLBACK_ENDPOINT:
        needed |= callback_permissions(request.get_json(silent=True))
    missing = [p for p in needed if not who.can(p)]
    if missing:
        log.info("refused %s %s to %s (%s): needs %s", request.method, request.path, who.name, who.role, missing)
        return _refuse(403, f"your role ({who.role}) may not do this")
    return None


SESSION_REFRESH_S = 3600
_REFRESHED_AT = "_refreshed_at"


def _slide_session() -> None:
    """Move a signed-in session's cookie expiry on, at most hourly: a wall that keeps asking stays signed
    in for good (until its kiosk link is revoked), and the cookie is otherwise the same on every answer."""
    if session.permanent and session.get(_SIGNED_AT) and time.time() - session.get(_REFRESHED_AT, 0) > SESSION_REFRESH_S:
        session[_REFRESHED_AT] = int(time.time())


def _set_csrf_cookie(response):
    token = session.get(_CSRF_KEY)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=False,  # Dash's renderer reads it to send the X-CSRFToken header
            samesite="Strict",
            path="/",
        )
    return response


def init_auth(server: Flask, settings) -> None:
    """Wire sign-in sessions, the gate and CSRF into the Flask server (the sign-in pages' blueprint,
    dashboard/login_page.py, is registered right after by dashboard/server.py's build_app)."""
    server.config.update(
        SESSION_COOKIE_NAME="citybrain_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.secure_cookies),
        # Kiosk sessions run for days; a user's session ends CITYBRAIN_SESSION_HOURS after sign-in.
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
        # A cookie re-sent with every answer (and Vary: Cookie on all of them) made browsers revalidate
        # cached geometry and re-download the Dash bundles on every page load: the cookie's expiry slides
        # at most once every SESSION_REFRESH_S instead (_slide_session).
        SESSION_REFRESH_EACH_REQUEST=False,
        CITYBRAIN_SESSION_SECONDS=int(settings.session_hours * 3600),
    )
    manager = LoginManager()
    manager.anonymous_user = Anonymous
    manager.session_protection = None  # the session's row in the store is what ends stale sessions
    manager.user_loader(_load)
    manager.init_app(server)
    server.before_request(_gate)
    server.before_request(_slide_session)
    server.after_request(_set_csrf_cookie)
