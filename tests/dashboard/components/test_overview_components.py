"""Overview widgets and page model as plain functions: KPI text, board order and marks, i18n, URLs, level choice, routing."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime

import pytest

from callbacks.shell import choose_lang
from dashboard import i18n
from dashboard.components import board, charts, header, kpis
from dashboard.pages import overview, overview_model, render
from data import schema
from layers import boundaries
from layers.scope import CITY, Scope
from tests.paths import ROOT

# --- text ------------------------------------------------------------------------------------------


def test_every_text_has_english_and_chinese():
    for key, (en, zh) in i18n.TEXT.items():
        assert en.strip() and zh.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or key == "lang.switch", f"{key} has no Chinese: {zh!r}"


def test_every_key_the_code_asks_for_exists():
    # Pages with many strings keep them in dashboard/*_text.py, added to i18n.TEXT when imported.
    for path in ROOT.glob("dashboard/*_text.py"):
        importlib.import_module(f"dashboard.{path.stem}")
    sources = [*ROOT.glob("dashboard/**/*.py"), *ROOT.glob("callbacks/*.py")]
    asked = set()
    for path in sources:
        asked |= set(re.findall(r"""\bt\(\s*["']([a-z_0-9]+\.[a-z_0-9.]+)["']""", path.read_text(encoding="utf-8")))
    missing = sorted(k for k in asked if k not in i18n.TEXT)
    assert not missing, missing
    # Keys built at run time: metrics, sectors, states, priorities, heat windows, KPI cards.
    for metric in ("open", "overdue", "new_24h"):
        assert f"metric.{metric}" in i18n.TEXT
    for key, *_ in kpis.CARDS:
        assert f"kpi.{key}" in i18n.TEXT
    for sector in ("party", "economy", "livelihood", "safety"):
        assert f"sector.{sector}" in i18n.TEXT
    from data.incidents import lifecycle

    for state in lifecycle.STATES:
        assert f"state.{state}" in i18n.TEXT


def test_the_domain_terms_are_the_ones_users_expect():
    assert i18n.t("board.not_reported", "zh") == "吹哨不到"
    assert i18n.t("board.no_effect", "zh") == "人到无效"
    assert i18n.t("kpi.near_due", "zh") == "临期"
    assert i18n.t("kpi.overdue", "zh") == "超期"
    assert i18n.t("overview.title", "zh") == "一屏统揽"


def test_language_codes_are_normalised_and_unknown_keys_show_themselves():
    assert i18n.normalise_lang("zh-CN") == "zh"
    assert i18n.normalise_lang("fr") == "en"
    assert i18n.normalise_lang(None) == "en"
    assert i18n.t("no.such.key", "zh") == "no.such.key"
    assert i18n.name({"name_en": "Yuzhong", "name_zh": "渝中区"}, "zh") == "渝中区"
    assert i18n.name({"name_en": "Yuzhong", "name_zh": ""}, "zh") == "Yuzhong"


def test_language_comes_from_the_url_then_the_browser_then_the_default():
    assert choose_lang("?lang=zh", "en", "en") == "zh"
    assert choose_lang("", "zh", "en") == "zh"
    assert choose_lang(None, None, "zh") == "zh"
    assert choose_lang("?lang=xx", None, "en") == "en"


# --- KPI cards and the board -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, kind, text",
    [
        (1234, "count", "1,234"),
        (0.9251, "rate", "92.5%"),
        (42 * 60, "seconds", "42 min"),
        (3.5 * 3600, "seconds", "3.5 h"),
        (None, "rate", "—"),
    ],
)
def test_kpi_values_read_as_people_say_them(value, kind, text):
    assert kpis.format_value(value, kind, "en") == text


def test_a_change_is_good_or_bad_depending_on_the_kpi():
    assert kpis.tone(5, "down") == "bad"  # more backlog than yesterday
    assert kpis.tone(-5, "down") == "good"
    assert kpis.tone(0.02, "up") == "good"  # a better on-time rate
    assert kpis.tone(3, None) == "neutral"
    assert kpis.format_delta(-0.015, "rate", "en").startswith("▼ 1.5 pt")
    assert kpis.format_delta(12, "count", "zh").endswith("较昨日")
    assert kpis.format_delta(0, "count", "en").startswith("=")
    assert kpis.format_delta(None, "count", "en") == ""


def test_kpi_cards_carry_their_raw_value_and_label():
    figures = {"open_backlog": {"value": 17, "yesterday": 12, "delta": 5}, "on_time_rate": {"value": None, "delta": None}}
    cards = {c.id["index"]: c for c in kpis.kpi_cards(figures, "zh")}
    assert len(cards) == len(kpis.CARDS)
    open_card = cards["open"]
    assert getattr(open_card, "data-value") == "17"
    assert open_card.children[0].children == "待办积压"
    assert "cb-tone-bad" in open_card.className
    assert getattr(cards["on_time_rate"], "data-value") == ""


def _row(code, flag, **extra):
    row = {
        "department_id": 1,
        "code": code,
        "name_en": code.upper(),
        "name_zh": code,
        "open": 3,
        "overdue": 1,
        "median_ack_s": 600.0,
        "median_handle_s": None,
        "on_time_rate": 0.5,
        "no_show": 2,
        "no_effect": 1,
        "flag": flag,
    }
    row.update(extra)
    return row


def test_the_board_keeps_worst_first_and_marks_red_and_yellow():
    rows = [_row("a", "red"), _row("b", "yellow"), _row("c", "none")]
    title, table = board.department_board(rows, "zh")
    body = table.children[1].children
    assert [r.className for r in body] == ["cb-board-row cb-flag-red", "cb-board-row cb-flag-yellow", "cb-board-row cb-flag-none"]
    first_cells = body[0].children
    assert first_cells[0].children[0].children == "红色预警"
    assert first_cells[6].children == "2"  # 吹哨不到
    assert first_cells[7].children == "1"  # 人到无效
    assert [th.children for th in table.children[0].children.children][-2:] == ["吹哨不到", "人到无效"]
    assert len(board.department_board(rows, "en", limit=2)[1].children[1].children) == 2
    assert board.department_board([], "en")[1].children == i18n.t("board.empty", "en")


def test_charts_print_their_values_and_follow_the_wall_scale():
    trend = [{"start": datetime(2025, 3, 3, h, tzinfo=UTC), "received": h, "closed": 1} for h in range(24)]
    figure = charts.trend_figure(trend, "en", wall=True, scale=2.0)
    assert figure.layout.font.size == 32
    assert list(figure.data[0].y) == list(range(24))
    data = {
        "by_sector": [{"sector": "safety", "open": 5, "new_today": 1}],
        "by_category": [{"code": "noise", "name_en": "Noise", "name_zh": "噪音", "sector": "safety", "open": 5, "new_today": 1}],
    }
    bars = charts.breakdown_figure(data, "zh", wall=False)
    safety = next(b for b in bars.data if b.name == "平安法治")
    assert list(safety.text) == ["5"] and list(safety.y) == ["噪音"]
    chips = {chip.className.split()[-1]: chip for chip in charts.sector_totals(data, "zh")}
    assert set(chips) == {"cb-sector-party", "cb-sector-economy", "cb-sector-livelihood", "cb-sector-safety"}
    assert chips["cb-sector-safety"].children[2].children == "5"
    assert chips["cb-sector-party"].children[2].children == "0"  # a quiet sector still shows


def test_breakdown_labels_every_bar_and_the_wall_shows_fewer_rows():
    by_category = [
        {
            "code": f"c{i}",
            "name_en": f"Category {i}",
            "name_zh": f"类别{i}",
            "sector": "livelihood",
            "open": 100 - i,
            "new_today": 0,
        }
        for i in range(10)
    ]
    data = {"by_sector": [], "by_category": by_category}
    desk = charts.breakdown_figure(data, "en", wall=False)
    wall = charts.breakdown_figure(data, "en", wall=True, scale=2)
    # Busiest on top, and each row's name is drawn: none dropped to make room.
    assert list(desk.layout.yaxis.tickvals) == [f"Category {i}" for i in reversed(range(charts.TOP_CATEGORIES))]
    assert list(wall.layout.yaxis.tickvals) == [f"Category {i}" for i in reversed(range(charts.TOP_CATEGORIES_WALL))]


def test_breadcrumb_buttons_lead_back_up_and_the_last_step_is_plain_text():
    chain = [
        {"id": 4, "level": 1, "name_en": "Yuzhong", "name_zh": "渝中区"},
        {"id": 9, "level": 2, "name_en": "Jiefangbei", "name_zh": "解放碑"},
    ]
    crumbs = [c for c in header.breadcrumb(chain, "en") if getattr(c, "className", "") != "cb-crumb-sep"]
    assert [c.id["index"] for c in crumbs[:-1]] == [0, 4]
    assert crumbs[-1].children == "Jiefangbei" and "cb-crumb-current" in crumbs[-1].className
    assert header.as_of_text(datetime(2025, 3, 3, 8, 0, 5, tzinfo=UTC), "Asia/Shanghai", "en") == "Data as of 2025-03-03 16:00:05"


# --- page model -------------------------------------------------------------------------------------


def test_drilling_in_shows_the_scopes_children_when_the_zoom_is_near_them():
    assert boundaries.level_for_view(10, None) == schema.DISTRICT
    assert boundaries.level_for_view(10, schema.DISTRICT) == schema.STREET
    assert boundaries.level_for_view(7, schema.DISTRICT) == schema.DISTRICT  # zoomed far out again
    assert boundaries.level_for_view(13, schema.COMMUNITY) == schema.GRID
    assert boundaries.level_for_view(11, schema.COMMUNITY) == schema.STREET
    assert boundaries.level_for_view(16, schema.GRID) == schema.GRID


def test_urls_carry_the_version_the_view_and_the_head():
    assert overview_model.units_url(schema.GRID, "12.34", (106.5, 29.5, 106.52, 29.52)) == (
        "/geo/units/grid.json?v=12.34&bbox=106.5%2C29.5%2C106.52%2C29.52"
    )
    assert overview_model.units_url(schema.DISTRICT, "1.1", None) == "/geo/units/district.json?v=1.1"
    scope = Scope(id=7, level=schema.DISTRICT)
    assert overview_model.markers_url_for(12, [[29.5, 106.5], [29.6, 106.6]], scope, 3) is None
    url = overview_model.markers_url_for(14, [[29.5, 106.5], [29.6, 106.6]], scope, 3)
    assert url.startswith("/geo/incidents.json?bbox=") and "scope=7" in url and url.endswith("h=3")
    assert overview_model.heat_spec("off", 12, CITY, 3) == {"url": None}
    assert overview_model.heat_spec("7d", 9, CITY, 3)["url"] == "/geo/heat.json?window=7d&cell=0.01&h=3"


def test_first_render_zoom_fits_the_frame():
    city = (106.0, 29.0, 107.5, 30.0)  # about the nine central districts
    assert 8 <= overview_model.estimate_zoom(city, 1000, 800) <= 10
    assert overview_model.estimate_zoom((106.5, 29.5, 106.52, 29.52), 1000, 800) >= 14
    assert overview_model.estimate_zoom(None) is None


def test_the_url_sets_the_first_state_and_bad_values_fall_back():
    state = overview.initial_state({"scope": "12", "metric": "overdue", "heat": "7d"}, "wall")
    assert state == {"scope": 12, "metric": "overdue", "heat": "7d", "variant": "wall"}
    state = overview.initial_state({"scope": "x", "metric": "nope", "heat": "2d"}, "desk")
    assert state == {"scope": None, "metric": "open", "heat": "24h", "variant": "desk"}


def test_unknown_paths_render_a_not_found_page():
    page = render(None, "/nowhere", "", "en")
    assert page.className == "cb-not-found"


def test_screens_woken_by_one_change_share_one_computation():
    import threading
    import time

    answers: dict = {}
    runs = []

    def memoised():  # what the flask-caching memoised read does: compute once, then answer from the cache
        if "k" not in answers:
            runs.append(1)
            time.sleep(0.05)
            answers["k"] = 42
        return answers["k"]

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(overview_model.single_flight(("t", 1), memoised))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 8
    assert len(runs) == 1


def test_a_dense_view_steps_up_a_level_instead_of_drawing_thousands_of_grids(engine, monkeypatch):
    from app import create_app
    from dashboard.settings import Settings
    from tests.overview_city import build_tiny_city

    build_tiny_city(engine)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    bounds = [[29.4, 106.4], [29.9, 107.4]]  # the whole tiny city: 32 grids, 8 communities
    with app.server.app_context():
        snap = overview_model.snapshot(engine)
        grids = overview_model.map_view(engine, snap, 15, bounds, CITY, "open", "en", "desk", "off")
        assert grids["level"] == schema.GRID
        monkeypatch.setattr(overview_model, "MAX_IN_VIEW", 10)
        fewer = overview_model.map_view(engine, snap, 15, bounds, CITY, "open", "en", "desk", "off")
    assert fewer["level"] == schema.COMMUNITY
    assert fewer["units_url"].startswith("/geo/units/community.json")
    assert fewer["hideout"]["level"] == schema.COMMUNITY
