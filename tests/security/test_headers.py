"""Headers and modes (issue 13, item 12): no framing, no sniffing, a script policy without 'unsafe-inline', HSTS over
https only; debug mode only on a loopback address; kiosk tokens never whole in the request logs."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import urllib.request

import pytest

from app import create_app
from dashboard.commands import serve
from dashboard.log_redaction import KioskTokenFilter, install_log_redaction, redact_kiosk_tokens
from dashboard.settings import Settings
from data.accounts import users as accounts
from tests.asgi_server import AsgiServer
from tests.auth_helpers import signed_in_client

# Pages, the sign-in page, a map layer, the API, Open311, static code, health, and a refusal.
PATHS = ("/", "/login", "/geo/units/district.json", "/api/v1/kpis", "/open311/v2/services.json", "/healthz", "/nope")


def _app(engine, **settings):
    return create_app(Settings.from_env({}, live=False, build_demo=False, **settings), engine=engine, testing=True)


def _policy(response) -> dict[str, list[str]]:
    directives = [d.strip().split() for d in response.headers["Content-Security-Policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def test_every_answer_forbids_framing_and_sniffing(sqlite_engine):
    client = signed_in_client(_app(sqlite_engine), "viewer")
    for path in PATHS:
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        assert _policy(response)["frame-ancestors"] == ["'none'"], path
        assert "Strict-Transport-Security" not in response.headers, path


def test_hsts_only_when_served_over_https(sqlite_engine):
    response = _app(sqlite_engine, secure_cookies=True).server.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_script_policy_allows_this_server_and_dash_s_own_inline_scripts_only(sqlite_engine):
    client = signed_in_client(_app(sqlite_engine, tile_url="https://{s}.tiles.example/{z}/{x}/{y}.png"), "viewer")
    page = client.get("/")
    policy = _policy(page)
    scripts = policy["script-src"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts and "*" not in scripts
    html = re.sub(r"<!--.*?-->", "", page.get_data(as_text=True), flags=re.S)  # Dash's IE notice is a comment
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", html, re.S)
    assert inline, "Dash's index page starts its renderer with an inline script"
    for body in inline:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert "https://*.tiles.example" in policy["img-src"]  # the basemap's tiles still load


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.0.0.5", False), ("centre.example", False)],
)
def test_debug_mode_only_on_a_loopback_address(host, allowed, caplog):
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        assert serve.debug_allowed(True, host) is allowed
    assert ("debug mode is refused" in caplog.text) is not allowed
    assert serve.debug_allowed(False, "127.0.0.1") is False


def test_serving_on_every_address_refuses_debug_mode(sqlite_engine, monkeypatch):
    served = []
    monkeypatch.setattr(serve, "run_asgi", lambda application, host, port: served.append(application))
    made = []

    def create(settings, engine=None):
        made.append(_app(sqlite_engine, debug=settings.debug))
        return made[-1]

    settings = Settings.from_env(
        {}, live=False, build_demo=False, debug=True, background="off", database_url=str(sqlite_engine.url)
    )
    serve.serve_app(settings, "0.0.0.0", 0, create)
    assert served and not made[0]._dev_tools.ui and not made[0].server.debug
    serve.serve_app(settings, "127.0.0.1", 0, create)
    assert made[1]._dev_tools.ui


TOKEN = accounts.KIOSK_PREFIX + "Zq3x9VtY0pLmN8rS2wE5uI7oA1dF4gH6jK0lB3nM5cX"
SHOWN = accounts.kiosk_token_shown(TOKEN)


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1 - - [08/Dec/2026 10:00:00] "GET /kiosk/{TOKEN}?lang=zh HTTP/1.1" 302 -',
        f'10.0.0.9 - "GET /wall?lang=en&kiosk={TOKEN} HTTP/1.1" 302',
        f"GET /wall?kiosk={TOKEN}",
    ],
)
def test_a_kiosk_token_is_cut_to_its_prefix(line):
    redacted = redact_kiosk_tokens(line)
    assert TOKEN not in redacted and SHOWN + "…" in redacted


def test_the_request_loggers_never_write_a_whole_token():
    """The three request loggers' own calls: positional arguments (uvicorn, Werkzeug) and gunicorn's atoms mapping."""
    records = [
        logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("10.0.0.9", "GET", f"/kiosk/{TOKEN}", "1.1", 302),
            None,
        ),
        logging.LogRecord(
            "werkzeug",
            logging.INFO,
            "",
            0,
            '127.0.0.1 - - [x] "%s" %s %s',
            (f"GET /wall?kiosk={TOKEN} HTTP/1.1", "302", "-"),
            None,
        ),
        logging.LogRecord(
            "gunicorn.access",
            logging.INFO,
            "",
            0,
            '%(h)s "%(r)s" %(s)s',
            ({"h": "10.0.0.9", "r": f"GET /kiosk/{TOKEN} HTTP/1.1", "s": "302"},),
            None,
        ),
    ]
    for record in records:
        KioskTokenFilter().filter(record)
        assert TOKEN not in record.getMessage() and SHOWN in record.getMessage()


def test_serving_a_kiosk_link_logs_only_its_prefix(engine, caplog):
    """Served as in production (uvicorn, the app's own access line): no log line holds the whole token."""
    app = _app(engine)
    with engine.begin() as conn:
        token, _ = accounts.create_kiosk_token(conn, "wall, room 3", None, "cli:test")
    install_log_redaction()
    opener = urllib.request.build_opener(_NoRedirect)
    with caplog.at_level(logging.INFO), AsgiServer(app) as served:
        for path in (f"/kiosk/{token}", f"/wall?kiosk={token}"):
            assert opener.open(served.url + path, timeout=10).status == 302
    lines = [record.getMessage() for record in caplog.records]
    assert not [line for line in lines if token in line]
    assert [line for line in lines if accounts.kiosk_token_shown(token) + "…" in line], lines


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Keep the 302 (following it would only log the wall's own request)."""

    def http_error_302(self, req, fp, code, msg, headers):
        return fp
