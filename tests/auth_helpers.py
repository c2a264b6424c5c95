"""The one way tests sign in: make a user of a role, and sign a Flask test client (or Chromium) in as them.

    client = signed_in_client(app)                          # an admin of the whole city
    client = signed_in_client(app, "viewer", unit_id=street) # a street's viewer
    client.post("/_dash-update-component", json=...)       # the CSRF header rides along

`app` is the Dash app create_app returns (or its Flask server).
"""

from __future__ import annotations

import itertools
import re
import time
from contextlib import contextmanager

from data.accounts import users as accounts

TEST_PASSWORD = "test-password-1"
_serial = itertools.count(1)


def _engine_of(app):
    server = getattr(app, "server", app)
    return server.extensions["citybrain"].engine


def make_user(engine, role: str = "admin", *, username: str | None = None, password: str = TEST_PASSWORD, **kwargs) -> dict:
    """A user of `role` (unit_id=, department_id=, display_name= as in accounts.create_user); returns it."""
    username = username or f"{role}{next(_serial)}"
    with engine.begin() as conn:
        return accounts.create_user(conn, username, password, role, **kwargs)


def csrf_from(client) -> str:
    """The CSRF token the server gave this client (the `_csrf_token` cookie Dash's renderer reads)."""
    cookie = client.get_cookie("_csrf_token")
    return cookie.value if cookie is not None else ""


def sign_in(client, username: str, password: str = TEST_PASSWORD, *, follow: bool = False):
    """POST the sign-in form as a browser would (CSRF token from the form); returns the response.

    On success every later request of `client` carries the X-CSRFToken header, like Dash's renderer.
    """
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    token = match.group(1) if match else ""
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=follow
    )
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_from(client)
    return response


def signed_in_opener(base_url: str, username: str, password: str = TEST_PASSWORD):
    """A urllib opener signed in to a server running in another process (its sign-in form, cookies kept):
    for tests of `python app.py` and gunicorn, where no Flask test client reaches."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.addheaders = [("Accept", "text/html")]
    with opener.open(f"{base_url}/login", timeout=30) as page:
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode("utf-8"))
    form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": match.group(1) if match else ""})
    with opener.open(f"{base_url}/login", data=form.encode(), timeout=30) as landed:
        assert "/login" not in landed.geturl(), f"sign-in as {username} failed"
    return opener


def signed_in_client(app, role: str = "admin", **user_kwargs):
    """A test client of `app` signed in as a new user of `role` (see make_user); `client.user` is the user."""
    server = getattr(app, "server", app)
    user = make_user(_engine_of(server), role, **user_kwargs)
    client = server.test_client()
    response = sign_in(client, user["username"], user_kwargs.get("password", TEST_PASSWORD))
    assert response.status_code == 302, f"sign-in as {user['username']} failed: {response.status_code}"
    client.user = user
    return client


def sign_in_browser(driver, base_url: str, username: str, password: str = TEST_PASSWORD, next_path: str = "/") -> None:
    """Sign a Selenium Chromium in through the real sign-in form, landing on `next_path`."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/login?next={next_path}")
    driver.find_element(By.ID, "login-username").send_keys(username)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    deadline = time.monotonic() + 15
    while "/login" in driver.current_url:  # wait for the redirect, so the next driver.get is signed in
        if driver.find_elements(By.ID, "login-message") or time.monotonic() > deadline:
            message = driver.find_elements(By.ID, "login-message")
            raise AssertionError(f"sign-in as {username} failed: {message[0].text if message else 'timed out'}")
        time.sleep(0.05)


def sign_out_browser(driver, base_url: str) -> None:
    """Sign a Selenium Chromium out as a user does: /logout asks, its button signs out (a POST with the CSRF token)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/logout")
    buttons = driver.find_elements(By.ID, "logout-confirm")
    if buttons:  # nobody signed in: /logout went straight to the sign-in page
        buttons[0].click()
    deadline = time.monotonic() + 15
    while not driver.find_elements(By.ID, "login-form"):
        if time.monotonic() > deadline:
            raise AssertionError("signing out did not reach the sign-in page")
        time.sleep(0.05)


@contextmanager
def request_as(app, role: str = "admin", path: str = "/", **user_kwargs):
    """A test request context of `app` signed in as a new user of `role` (for calling page or callback
    functions directly); yields the user."""
    from flask_login import login_user

    from dashboard import access

    server = getattr(app, "server", app)
    user = make_user(_engine_of(server), role, **user_kwargs)
    with server.test_request_context(path):
        login_user(access.principal_for_user(user))
        yield user


def cookie_header(client) -> dict[str, str]:
    """The signed-in test client's session as a Cookie header, for requests over real HTTP to the same app."""
    cookie = client.get_cookie("citybrain_session")
    assert cookie is not None, "the client is not signed in"
    return {"Cookie": f"citybrain_session={cookie.value}"}
