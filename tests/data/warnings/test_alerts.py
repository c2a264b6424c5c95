"""Early-warning store: alerts are raised once per condition, acted on once, audited, scoped and configurable."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from data import schema
from data.errors import InvalidTransition, NotFound, ValidationError
from data.incidents.feed import get_incident
from data.warnings import alerts as warnings
from data.warnings import sensitivity
from tests.factories import T0, make_world


def _finding(world, grid_index=0, category="garbage", observed=12.0, kind="surge", **extra) -> dict:
    grid_id = world.lattice.grid_ids[grid_index]
    lon, lat = world.lattice.center(grid_index)
    return {
        "kind": kind,
        "condition_key": f"{kind}:grid:{grid_id}:{world.categories[category]}",
        "score": observed - 2.0,
        "observed": observed,
        "expected": 2.0,
        "unit_id": grid_id,
        "category_id": world.categories[category],
        "lon": lon,
        "lat": lat,
        "reason_en": f"{observed:g} {category} reports in Grid {grid_index}; 2 expected",
        "reason_zh": f"网格{grid_index}{category}{observed:g}件,预期2件",
        "details": {"window_h": 6},
        **extra,
    }


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def _raise(engine, findings, now=T0, kinds=("surge",)):
    with engine.begin() as conn:
        return warnings.record_findings(conn, findings, kinds, now)


def _only_alert(engine) -> dict:
    with engine.connect() as conn:
        (alert,) = warnings.list_alerts(conn, statuses=None)
    return alert


def test_a_condition_raises_one_alert_and_later_passes_update_it(engine, world):
    counts = _raise(engine, [_finding(world, observed=12)])
    assert counts["surge"]["raised"] == 1
    counts = _raise(engine, [_finding(world, observed=15)], now=T0 + timedelta(minutes=5))
    assert counts["surge"] == {"raised": 0, "updated": 1, "cleared": 0, "suppressed": 0}
    # An unchanged condition is not even an update event.
    counts = _raise(engine, [_finding(world, observed=15)], now=T0 + timedelta(minutes=10))
    assert counts["surge"]["updated"] == 0 and counts["surge"]["raised"] == 0

    alert = _only_alert(engine)
    assert (alert["status"], alert["observed"], alert["expected"]) == ("open", 15.0, 2.0)
    assert alert["first_seen_at"] == T0 and alert["last_seen_at"] == T0 + timedelta(minutes=10)
    assert alert["category_code"] == "garbage" and alert["unit_level"] == schema.GRID
    with engine.connect() as conn:
        assert [e["action"] for e in warnings.alert_history(conn, alert["id"])] == ["raised", "updated"]


def test_a_condition_that_went_away_is_cleared_and_a_new_episode_is_a_new_alert(engine, world):
    _raise(engine, [_finding(world)])
    counts = _raise(engine, [], now=T0 + timedelta(hours=1))
    assert counts["surge"]["cleared"] == 1
    assert _only_alert(engine)["status"] == "cleared"
    # A pass that did not look for surges clears none of them.
    _raise(engine, [_finding(world)], now=T0 + timedelta(days=2))
    counts = _raise(engine, [], now=T0 + timedelta(days=2, hours=1), kinds=("chronic",))
    assert counts["surge"]["cleared"] == 0
    with engine.connect() as conn:
        alerts = warnings.list_alerts(conn, statuses=None)
    assert sorted(a["status"] for a in alerts) == ["cleared", "open"]
    assert len({a["dedup_key"] for a in alerts}) == 2


def test_a_dismissed_condition_stays_quiet_during_its_cooldown(engine, world):
    _raise(engine, [_finding(world, cooldown=86400)])
    alert = _only_alert(engine)
    with engine.begin() as conn:
        warnings.act_on_alert(conn, alert["id"], "dismiss", "op1", note="street fair, expected", now=T0 + timedelta(minutes=1))
    counts = _raise(engine, [_finding(world, cooldown=86400)], now=T0 + timedelta(hours=2))
    assert counts["surge"]["raised"] == 0 and counts["surge"]["suppressed"] == 1
    assert _only_alert(engine)["status"] == "dismissed"
    counts = _raise(engine, [_finding(world, cooldown=3600)], now=T0 + timedelta(hours=2, minutes=30))
    assert counts["surge"]["raised"] == 0, "cooldown counts from when the condition was last seen"
    counts = _raise(engine, [_finding(world, cooldown=3600)], now=T0 + timedelta(hours=4))
    assert counts["surge"]["raised"] == 1


def test_actions_follow_the_rules_and_are_audited(engine, world):
    _raise(engine, [_finding(world)])
    alert_id = _only_alert(engine)["id"]
    with engine.begin() as conn:
        head = warnings.alerts_head(conn)
        acked = warnings.act_on_alert(conn, alert_id, "acknowledge", "op1", now=T0 + timedelta(minutes=1))
        assert (acked["status"], acked["acted_by"]) == ("acknowledged", "op1")
        assert warnings.alerts_head(conn) > head
    with pytest.raises(InvalidTransition, match="acknowledged"), engine.begin() as conn:
        warnings.act_on_alert(conn, alert_id, "acknowledge", "op2")
    with pytest.raises(ValidationError, match="reason"), engine.begin() as conn:
        warnings.act_on_alert(conn, alert_id, "dismiss", "op2", note="   ")
    with pytest.raises(ValidationError, match="unknown action"), engine.begin() as conn:
        warnings.act_on_alert(conn, alert_id, "delete", "op2")
    with pytest.raises(ValidationError, match="actor"), engine.begin() as conn:
        warnings.act_on_alert(conn, alert_id, "dismiss", " ", note="x")
    with engine.begin() as conn:
        dismissed = warnings.act_on_alert(
            conn, alert_id, "dismiss", "op2", note="known market day", now=T0 + timedelta(minutes=2)
        )
    assert (dismissed["status"], dismissed["act_note"]) == ("dismissed", "known market day")
    with pytest.raises(InvalidTransition), engine.begin() as conn:
        warnings.act_on_alert(conn, alert_id, "case", "op3")
    with engine.connect() as conn:
        events = warnings.alert_history(conn, alert_id)
        with pytest.raises(NotFound):
            warnings.get_alert(conn, 999999)
    assert [(e["action"], e["actor"], e["note"]) for e in events] == [
        ("raised", "system:early-warning", None),
        ("acknowledge", "op1", None),
        ("dismiss", "op2", "known market day"),
    ]


def test_a_case_files_an_incident_at_the_alert_with_its_reason(engine, world):
    _raise(engine, [_finding(world, grid_index=4, category="water")])
    alert_id = _only_alert(engine)["id"]
    with engine.begin() as conn:
        alert = warnings.act_on_alert(conn, alert_id, "case", "op1", note="send a crew", now=T0 + timedelta(minutes=3))
        incident = get_incident(conn, alert["case_incident_id"])
        events = warnings.alert_history(conn, alert_id)
    assert alert["status"] == "cased"
    assert (incident["source"], incident["external_id"]) == ("warning", f"alert-{alert_id}")
    assert incident["category_id"] == world.categories["water"]
    assert incident["grid_id"] == world.lattice.grid_ids[4]
    assert "water reports in Grid 4" in incident["description"]
    assert events[-1]["action"] == "case" and str(incident["id"]) in events[-1]["note"]


def test_a_case_from_an_alert_without_category_needs_the_general_category(engine, world):
    finding = _finding(world, kind="hotspot")
    finding["category_id"] = None
    _raise(engine, [finding], kinds=("hotspot",))
    alert_id = _only_alert(engine)["id"]
    with pytest.raises(ValidationError, match="general category"), engine.begin() as conn:
        warnings.act_on_alert(conn, alert_id, "case", "op1")
    assert _only_alert(engine)["status"] == "open", "a failed case leaves the alert as it was"
    from data.store import set_meta

    with engine.begin() as conn:
        set_meta(conn, warnings.CASE_CATEGORY_META, "construction")
        alert = warnings.act_on_alert(conn, alert_id, "case", "op1")
        assert get_incident(conn, alert["case_incident_id"])["category_id"] == world.categories["construction"]


def test_two_operators_clicking_at_once_act_once(engine, world):
    _raise(engine, [_finding(world)])
    alert_id = _only_alert(engine)["id"]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def click(actor: str) -> None:
        barrier.wait()
        try:
            with engine.begin() as conn:
                warnings.act_on_alert(conn, alert_id, "case", actor)
            outcomes.append("acted")
        except InvalidTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=click, args=(f"op{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["acted", "refused"]
    with engine.connect() as conn:
        cases = conn.execute(select(schema.incidents.c.id).where(schema.incidents.c.source == "warning")).all()
        actions = [e["action"] for e in warnings.alert_history(conn, alert_id)]
    assert len(cases) == 1 and actions == ["raised", "case"]


def test_lists_are_ranked_and_limited_to_the_scope(engine, world):
    lattice = world.lattice
    # Grids 0 and 3 lie in district 0, grids 2 and 5 in district 1 (split by column).
    _raise(engine, [_finding(world, 0, observed=5), _finding(world, 2, observed=30), _finding(world, 3, observed=9)])
    with engine.connect() as conn:
        city = warnings.list_alerts(conn)
        district0 = warnings.list_alerts(conn, scope=(schema.DISTRICT, lattice.district_ids[0]))
        street1 = warnings.list_alerts(conn, scope=("street", lattice.street_ids[1]))
        grid3 = warnings.list_alerts(conn, scope=(schema.GRID, lattice.grid_ids[3]))
        top = warnings.list_alerts(conn, limit=1)
        with pytest.raises(ValidationError):
            warnings.list_alerts(conn, statuses=("bogus",))
    assert [a["observed"] for a in city] == [30, 9, 5]
    assert [a["observed"] for a in district0] == [9, 5]
    assert [a["observed"] for a in street1] == [30]
    assert [a["observed"] for a in grid3] == [9]
    assert [a["observed"] for a in top] == [30]


def test_sensitivity_is_validated_and_audited(engine, world):
    garbage = world.categories["garbage"]
    with engine.begin() as conn:
        before = {s["code"]: s for s in sensitivity.get_settings(conn)}
        assert before["garbage"]["sensitivity"] == 1.0 and before["garbage"]["enabled"] is True
        head = warnings.alerts_head(conn)
        saved = sensitivity.set_sensitivity(conn, garbage, 2.5, False, "chief")
        assert (saved["sensitivity"], saved["enabled"], saved["updated_by"]) == (2.5, False, "chief")
        assert warnings.alerts_head(conn) > head
        sensitivity.set_sensitivity(conn, garbage, 0.5, True, "chief")
    for bad in (0.0, 10, float("nan"), "high", True):
        with pytest.raises(ValidationError), engine.begin() as conn:
            sensitivity.set_sensitivity(conn, garbage, bad, True, "chief")
    with pytest.raises(NotFound), engine.begin() as conn:
        sensitivity.set_sensitivity(conn, 99999, 1.0, True, "chief")
    with engine.connect() as conn:
        after = {s["code"]: s for s in sensitivity.get_settings(conn)}
        notes = (
            conn.execute(
                select(schema.alert_events.c.note)
                .where(schema.alert_events.c.action == "settings")
                .order_by(schema.alert_events.c.id)
            )
            .scalars()
            .all()
        )
    assert after["garbage"]["sensitivity"] == 0.5 and after["garbage"]["enabled"] is True
    assert notes == ["category garbage: sensitivity 1, on -> 2.5, off", "category garbage: sensitivity 2.5, off -> 0.5, on"]
