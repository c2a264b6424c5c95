"""The /trends page's URL choices, its CSV and Excel exports and the meeting brief, through the app's own server."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from app import create_app
from dashboard.components import trends_tables
from dashboard.pages import trends as page
from dashboard.settings import Settings
from data import schema, store
from data.demo.city import build_demo
from data.errors import ValidationError
from data.metrics import trends
from data.times import utc_now
from tests.auth_helpers import request_as, signed_in_client

TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    engine = store.make_engine(f"sqlite:///{tmp_path_factory.mktemp('trends') / 'store.db'}")
    store.migrate(engine)
    build_demo(engine, grids=200, days=20, per_day=60)
    settings = Settings.from_env({}, live=False, build_demo=False, timezone=TZ)
    yield create_app(settings, engine=engine, testing=True)
    engine.dispose()


def _store_review(app, **kwargs):
    with store.reading(app.server.extensions["citybrain"].engine) as conn:
        return trends.review(conn, kwargs.pop("scope", None), utc_now(), TZ, **kwargs)


def _csv(response):
    assert response.status_code == 200, response.data
    text = response.data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_choice_round_trips_through_the_url():
    choice = page.Choice(None, date(2025, 3, 1), date(2025, 3, 9), (schema.STREET, 12), "week")
    from urllib.parse import parse_qsl

    assert page.parse_choice(dict(parse_qsl(choice.query("zh")))) == choice
    for bad in ({"period": "8"}, {"gran": "hour"}, {"scope": "planet:1"}, {"period": "custom", "from": "2025-03-09"}):
        with pytest.raises(ValidationError):
            page.parse_choice(bad)


def test_series_csv_equals_the_store(app):
    client = signed_in_client(app)
    rows = _csv(client.get("/trends/export/series.csv?period=7&gran=day"))
    review = _store_review(app, days=7, granularity="day")
    header, body = rows[0], rows[1:]
    assert header[:3] == ["From", "Received", "Closed"]
    assert [int(r[1]) for r in body] == [b["received"] for b in review["series"]]
    assert [int(r[2]) for r in body] == [b["closed"] for b in review["series"]]
    assert sum(int(r[1]) for r in body) == review["totals"]["received"] > 0


def test_league_and_units_csv_follow_the_scope(app):
    client = signed_in_client(app)
    city = _csv(client.get("/trends/export/units.csv?period=30"))
    district_id = _store_review(app, days=30)["units"][0]["unit_id"]
    streets = _csv(client.get(f"/trends/export/units.csv?period=30&scope=district:{district_id}"))
    scoped = _store_review(app, days=30, scope=("district", district_id))
    assert len(city) - 1 == len(_store_review(app, days=30)["units"])
    assert [r[0] for r in streets[1:]] == [u["code"] for u in scoped["units"]]
    league = _csv(client.get(f"/trends/export/league.csv?period=30&scope=district:{district_id}&lang=zh"))
    assert league[0][0] == "排名" and len(league) - 1 == len(scoped["league"])


def test_every_table_exports_to_excel(app):
    client = signed_in_client(app)
    review = _store_review(app, days=30)
    for which in trends_tables.TABLES:
        response = client.get(f"/trends/export/{which}.xlsx?period=30")
        assert response.status_code == 200
        sheet = load_workbook(io.BytesIO(response.data)).active
        keys, rows = trends_tables.table(review, which, "en")
        assert sheet.max_row == len(rows) + 1
        assert [c.value for c in sheet[1]] == [trends_tables.column_label(k, "en") for k in keys]


def test_bad_export_requests_get_a_clear_answer(app):
    client = signed_in_client(app)
    assert client.get("/trends/export/series.csv?period=8").status_code == 400
    assert b"granularity" in client.get("/trends/export/series.csv?gran=hour").data
    assert client.get("/trends/export/nothing.csv").status_code == 404


def test_meeting_brief_carries_headline_charts_and_league(app):
    client = signed_in_client(app)
    response = client.get("/trends/brief?period=30")
    assert response.status_code == 200
    body = response.data.decode()
    review = _store_review(app, days=30)
    assert "brief-headline" in body and "brief-league" in body
    assert f"<td>{review['totals']['received']}</td>" in body
    assert body.count("plotly-graph-div") >= len(page.trends_charts.CHARTS)


def test_page_renders_for_the_url(app):
    from dashboard.pages import render

    deps = app.server.extensions["citybrain"]
    with request_as(app, "leader"):
        layout = render(deps, "/trends", "?period=7&gran=day", "zh")
    text = str(layout)
    assert "trends-chart-volume" in text and "trends-table-league" in text and "趋势研判" in text
