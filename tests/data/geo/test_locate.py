"""Point -> grid lookup finds the right grid, keeps outsiders unlocated and is deterministic on borders."""

from datetime import UTC, datetime

import numpy as np
import shapely
from shapely.geometry import box

from data import schema
from data.geo.locate import GridLocator


def _insert_grid(conn, id_, geom, district_id=1):
    minx, miny, maxx, maxy = geom.bounds
    conn.execute(
        schema.units.insert().values(
            id=id_,
            code=f"G{id_}",
            level=schema.GRID,
            name_en=f"Grid {id_}",
            name_zh=f"网格{id_}",
            geom=shapely.to_wkb(geom),
            minx=minx,
            miny=miny,
            maxx=maxx,
            maxy=maxy,
            district_id=district_id,
            street_id=10 + id_,
            community_id=100 + id_,
            updated_at=datetime.now(UTC),
        )
    )


def test_points_land_in_their_grid_and_outsiders_stay_unlocated(engine):
    with engine.begin() as conn:
        _insert_grid(conn, 1, box(106.0, 29.0, 106.1, 29.1))
        _insert_grid(conn, 2, box(106.1, 29.0, 106.2, 29.1), district_id=2)
        locator = GridLocator.from_conn(conn)
    assert len(locator) == 2
    found = locator.locate_many([106.05, 106.15, 107.0, float("nan")], [29.05, 29.05, 29.05, 29.05])
    assert [loc.grid_id for loc in found] == [1, 2, None, None]
    assert found[1].district_id == 2 and found[1].street_id == 12 and found[1].community_id == 102
    assert found[2].unlocated and found[3].unlocated
    # A point on the shared edge always goes to the same grid.
    assert locator.locate(106.1, 29.05).grid_id == locator.locate(106.1, 29.05).grid_id == 1
    assert locator.locate(None, 29.0).unlocated


def test_lookup_is_vectorised_over_many_points(sqlite_engine):
    with sqlite_engine.begin() as conn:
        for i in range(100):
            x, y = 106 + (i % 10) * 0.01, 29 + (i // 10) * 0.01
            _insert_grid(conn, i + 1, box(x, y, x + 0.01, y + 0.01))
        locator = GridLocator.from_conn(conn)
    rng = np.random.default_rng(1)
    lons, lats = rng.uniform(106, 106.1, 5000), rng.uniform(29, 29.1, 5000)
    idx = locator.grid_index(lons, lats)
    expected = (np.floor((lats - 29) / 0.01) * 10 + np.floor((lons - 106) / 0.01)).astype(int)
    interior = ((lons - 106) % 0.01 > 1e-9) & ((lats - 29) % 0.01 > 1e-9)
    assert (locator.ids[idx[interior]] == expected[interior] + 1).all()
