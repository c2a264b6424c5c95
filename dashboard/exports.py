"""Exports of the leaders' review: every /trends table as CSV or Excel, and a printable HTML meeting brief (会商简报)."""

from __future__ import annotations

import csv
import html as html_escape
import io

import plotly.io as pio
from flask import Blueprint, Response, current_app, request

from dashboard import jurisdiction
from dashboard.components import trends_charts, trends_tables
from dashboard.csv_safe import is_formula_like, safe_row
from dashboard.i18n import name, normalise_lang, t
from dashboard.pages.trends import parse_choice, read_review
from data.errors import NotFound, ValidationError

bp = Blueprint("trends_exports", __name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_text(keys: list[str], rows: list[list], lang: str) -> str:
    """CSV with a header of translated column names; a UTF-8 BOM so Excel opens Chinese text correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(safe_row(trends_tables.column_label(k, lang) for k in keys))
    writer.writerows(safe_row(row) for row in rows)
    return "\ufeff" + out.getvalue()


def _xlsx_row(sheet, values) -> list:
    """Cells for one sheet row: text is always a text cell, never a formula (openpyxl reads '=...' as one).

    Formula-like text keeps its exact characters and gets Excel's own quote prefix (the hidden apostrophe a user
    types), so it shows as written and stays text when someone edits the cell.
    """
    from openpyxl.cell.cell import Cell

    cells = []
    for value in values:
        cell = Cell(sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"
            cell.quotePrefix = is_formula_like(value)
        cells.append(cell)
    return cells


def xlsx_bytes(sheets: dict[str, tuple[list[str], list[list]]], lang: str) -> bytes:
    """An Excel workbook with one sheet per table."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, (keys, rows) in sheets.items():
        sheet = book.create_sheet(title[:31])
        sheet.append(_xlsx_row(sheet, [trends_tables.column_label(k, lang) for k in keys]))
        for row in rows:
            sheet.append(_xlsx_row(sheet, row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _review_for_request():
    deps = current_app.extensions["citybrain"]
    lang = normalise_lang(request.args.get("lang"))
    # A scope outside the signed-in user's jurisdiction is not found (404); none asked means theirs.
    choice = jurisdiction.clamp_choice(deps.engine, parse_choice(request.args), strict=True)
    return read_review(deps.engine, choice, deps.settings.timezone), choice, lang


@bp.errorhandler(NotFound)
def _not_found(error: NotFound) -> Response:
    return Response(f"{error}\n", status=404, mimetype="text/plain")


def _bad(error: Exception) -> Response:
    return Response(f"{error}\n", status=400, mimetype="text/plain")


@bp.get("/trends/export/<which>.<fmt>")
def export(which: str, fmt: str):
    if which not in trends_tables.TABLES or fmt not in ("csv", "xlsx"):
        return Response("unknown table or format\n", status=404, mimetype="text/plain")
    try:
        review, _choice, lang = _review_for_request()
    except ValidationError as error:
        return _bad(error)
    keys, rows = trends_tables.table(review, which, lang)
    headers = {"Content-Disposition": f'attachment; filename="trends-{which}.{fmt}"'}
    if fmt == "csv":
        return Response(csv_text(keys, rows, lang), mimetype="text/csv; charset=utf-8", headers=headers)
    return Response(xlsx_bytes({which: (keys, rows)}, lang), mimetype=XLSX, headers=headers)


def brief_html(review: dict, scope_name: str, lang: str) -> str:
    """A printable page: headline figures against the previous period, every chart and the league table."""
    p = review["period"]
    esc = html_escape.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(t('trends.brief', lang))}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;color:#1b2733}table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #c9d3dd;padding:2px 6px;text-align:right}th{background:#eef2f6}"
        ".chart{page-break-inside:avoid}@media print{a{display:none}}</style></head><body>",
        f"<h1>{esc(t('trends.brief', lang))} · {esc(scope_name)}</h1>",
        f"<p>{p['start']:%Y-%m-%d %H:%M} – {p['end']:%Y-%m-%d %H:%M} UTC ({esc(p['tz'])})</p>",
        "<table id='brief-headline'><tr><th></th>",
        f"<th>{esc(t('trends.period', lang))}</th><th>{esc(t('trends.vs_previous', lang))}</th></tr>",
    ]
    for key in trends_tables.FIGURE_KEYS:
        now_v = trends_tables._value(key, review["totals"][key])
        was = trends_tables._value(key, review["previous"][key])
        parts.append(f"<tr><th>{esc(t(f'trends.col.{key}', lang))}</th><td>{now_v}</td><td>{was}</td></tr>")
    parts.append("</table>")
    for i, (key, make) in enumerate(trends_charts.CHARTS.items()):
        figure = make(review, lang)
        figure.update_layout(width=900, height=320)
        # Plotly's script travels once, inside the first chart: the brief works offline and prints.
        div = pio.to_html(figure, include_plotlyjs="inline" if i == 0 else False, full_html=False)
        parts.append(f"<div class='chart'><h2>{esc(t(f'trends.chart.{key}', lang))}</h2>{div}</div>")
    for which in ("league", "longest_open", "escalated"):
        keys, rows = trends_tables.table(review, which, lang)
        parts.append(f"<h2>{esc(t(f'trends.table.{which}', lang))}</h2><table id='brief-{which}'><tr>")
        parts.extend(f"<th>{esc(trends_tables.column_label(k, lang))}</th>" for k in keys)
        parts.append("</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc('' if v is None else str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


@bp.get("/trends/brief")
def brief():
    try:
        review, choice, lang = _review_for_request()
    except ValidationError as error:
        return _bad(error)
    scope_name = t("level.city", lang)
    if choice.scope:
        from sqlalchemy import select

        from data import schema, store

        u = schema.units
        with store.reading(current_app.extensions["citybrain"].engine) as conn:
            row = conn.execute(select(u.c.name_en, u.c.name_zh).where(u.c.id == choice.scope[1])).first()
        scope_name = name(dict(row._mapping), lang) if row else str(choice.scope[1])
    return Response(brief_html(review, scope_name, lang), mimetype="text/html")
