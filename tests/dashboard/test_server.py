"""build_app's wiring that every worker relies on: without CITYBRAIN_SECRET_KEY, app instances on one store sign alike."""

from __future__ import annotations

from app import create_app
from dashboard.settings import Settings
from tests.auth_helpers import signed_in_client


def _app(url: str):
    return create_app(Settings.from_env({}, database_url=url, live=False, build_demo=False), testing=True)


def test_two_workers_and_a_restart_honour_one_session_without_a_configured_key(sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    worker_a, worker_b = _app(url), _app(url)
    assert worker_a.server.secret_key == worker_b.server.secret_key
    client = signed_in_client(worker_a, "viewer")
    cookie = client.get_cookie("citybrain_session")
    for other in (worker_b, _app(url)):  # another worker; a restarted one
        visitor = other.server.test_client()
        visitor.set_cookie(cookie.key, cookie.value)
        page = visitor.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.headers.get("Location")
