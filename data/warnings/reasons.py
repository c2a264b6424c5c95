"""The words of each finding: its reason in English and Chinese, naming its unit, category and department."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data.warnings.chronic import CHRONIC_DAYS
from data.warnings.context import C, D, U
from data.warnings.stats import expected_text, p_text


def fill_reasons(conn: Connection, findings: list[dict]) -> None:
    """Write each finding's reason in English and Chinese, naming its unit, category and department."""
    unit_ids = {f["unit_id"] for f in findings if f.get("unit_id") is not None}
    names = {}
    ids = sorted(unit_ids)
    for start in range(0, len(ids), 500):
        for row in conn.execute(select(U.c.id, U.c.name_en, U.c.name_zh).where(U.c.id.in_(ids[start : start + 500]))):
            names[row.id] = (row.name_en, row.name_zh)
    cats = {row.id: (row.name_en, row.name_zh) for row in conn.execute(select(C.c.id, C.c.name_en, C.c.name_zh))}
    depts = {row.id: (row.name_en, row.name_zh) for row in conn.execute(select(D.c.id, D.c.name_en, D.c.name_zh))}
    for f in findings:
        text_ = f.pop("_text")
        unit_en, unit_zh = names.get(f.get("unit_id"), ("an unlocated place", "未定位地点"))
        cat_en, cat_zh = cats.get(f.get("category_id"), ("matter", "事项"))
        o, e = f["observed"], f["expected"]
        if text_[0] == "surge":
            _, window_h, when_en, when_zh, log10_p = text_
            f["reason_en"] = (
                f"{o:g} {cat_en.lower()} reports in {unit_en} in the last {window_h} h; "
                f"{expected_text(e)} expected for a {when_en} ({p_text(log10_p)})"
            )
            f["reason_zh"] = (
                f"{unit_zh}近{window_h}小时{cat_zh}上报{o:g}件，按历史同期（{when_zh}）预期{expected_text(e)}件（{p_text(log10_p)}）"
            )
        elif text_[0] == "hotspot":
            _, days, n_grids, log10_p, pooled, share = text_
            what_en = f"reports ({share:.0%} {cat_en.lower()})" if pooled else f"{cat_en.lower()} reports"
            what_zh = f"各类事件（{cat_zh}占{share:.0%}）" if pooled else cat_zh
            f["reason_en"] = (
                f"New cluster: {o:g} {what_en} around {unit_en} ({n_grids} grids) in the last "
                f"{days} d; {expected_text(e)} expected from their own past ({p_text(log10_p)})"
            )
            f["reason_zh"] = (
                f"新聚集：{unit_zh}及周边{n_grids}个网格近{days}天上报{what_zh}{o:g}件，按其历史预期{expected_text(e)}件（{p_text(log10_p)}）"
            )
        elif text_[0] == "chronic":
            days = text_[1]
            f["reason_en"] = (
                f"Recurring: {o:g} {cat_en.lower()} reports at the same spot in {unit_en} on {days} different days "
                f"in {CHRONIC_DAYS} days (closed or not); {expected_text(e)} expected"
            )
            f["reason_zh"] = (
                f"反复出现：{unit_zh}同一地点{CHRONIC_DAYS}天内有{days}天上报{cat_zh}，共{o:g}件（含已结案），预期{expected_text(e)}件"
            )
        else:
            d = f["details"]
            dept_en, dept_zh = depts.get(d["department_id"], ("the assignee", "承办单位"))
            clock_en, clock_zh = ("handle", "办结") if d["clock"] == "handle" else ("acknowledge", "签收")
            pace_en = (
                f"half its cases take {d['median_left_h']:.1f} h more" if d["median_left_h"] is not None else "few finish in time"
            )
            pace_zh = (
                f"按其近期进度预计还需{d['median_left_h']:.1f}小时" if d["median_left_h"] is not None else "近期很少按时完成"
            )
            f["reason_en"] = (
                f"Incident #{f['incident_id']} ({cat_en.lower()}) must be {clock_en}d within {d['hours_left']:.1f} h; "
                f"{dept_en} has {d['queue']} open ({d['load']:.1f}x its usual load) and {pace_en}: "
                f"{d['p_breach'] * 100:.0f}% likely to miss the limit"
            )
            f["reason_zh"] = (
                f"事件#{f['incident_id']}（{cat_zh}）须在{d['hours_left']:.1f}小时内{clock_zh}；{dept_zh}在办{d['queue']}件"
                f"（平时的{d['load']:.1f}倍），{pace_zh}：超期可能性{d['p_breach'] * 100:.0f}%"
            )
