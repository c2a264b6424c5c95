"""Signing in never sends the browser to another site, whatever `next` holds (issue 13, item 3).

Browsers delete tab, CR and LF anywhere in a URL and trim spaces and control characters at its ends before
following a redirect: `/\\t/evil.example` is `//evil.example` to them, another site.
"""

from __future__ import annotations

import re

import pytest

from app import create_app
from dashboard.login_page import safe_next
from dashboard.settings import Settings
from tests.auth_helpers import TEST_PASSWORD, make_user

HOSTILE = (
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example/x",
    "\t//evil.example",
    " //evil.example",
    "\x01//evil.example",
    "//evil.example/x",
    "/\\evil.example",
    "/\t\\evil.example",
    "\\\\evil.example",
    "/x\\..\\..\\evil",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "/\x00/evil.example",
    "/a\x7f/b",
    "/a\u0085b",
    "evil.example",
    "/login?next=//evil.example",
    "/" + "a" * 3000,
)
KEPT = ("/", "/wall?lang=zh", "/dispatch?incident=12#panel", "/trends?period=week&scope=3", "/a%2F%2Fb")


@pytest.mark.parametrize("target", HOSTILE)
def test_a_hostile_next_goes_home(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", KEPT)
def test_a_path_on_this_site_is_kept(target):
    assert safe_next(target) == target


def test_what_a_browser_would_read_as_the_same_path_is_kept_without_the_dropped_characters():
    assert safe_next("/wa\tll?lang=\nzh") == "/wall?lang=zh"
    assert safe_next(" /wall ") == "/wall"


@pytest.fixture
def client(sqlite_engine):
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=sqlite_engine, testing=True)
    make_user(sqlite_engine, "viewer", username="ops")
    return app.server.test_client()


def _csrf(client, query: str = "") -> str:
    page = client.get(f"/login{query}")
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_signing_in_from_a_hostile_link_lands_on_this_site(client):
    for target in HOSTILE:
        token = _csrf(client)
        form = {"username": "ops", "password": TEST_PASSWORD, "csrf_token": token, "next": target}
        response = client.post("/login", data=form)
        assert response.status_code == 302 and response.headers["Location"] == "/", (target, response.headers.get("Location"))


def test_a_newline_in_next_is_a_sign_in_page_not_a_500(client):
    page = client.get("/login", query_string={"next": "/\n/evil.example"})
    assert page.status_code == 200
    assert 'name="next" value="/"' in page.get_data(as_text=True)
