"""Commands of the intake area: `python app.py import-incidents FILE`."""

from __future__ import annotations

from pathlib import Path

import click

from dashboard.commands import command_store
from dashboard.settings import Settings


@click.command("import-incidents")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--time-col", help="Column with the report time (default: reported_at, time, ...).")
@click.option("--lon-col", help="Column with the longitude (GeoJSON: the point geometry unless given).")
@click.option("--lat-col", help="Column with the latitude (GeoJSON: the point geometry unless given).")
@click.option("--category-col", help="Column with the category code or name.")
@click.option("--id-col", help="Column with the incident's id in the source system.")
@click.option("--description-col", help="Column with the description.")
@click.option("--priority-col", help="Column with the priority: 1/urgent, 2/high, 3/normal (blank: 3).")
@click.option("--address-col", help="Column with the address.")
@click.option("--category-map", type=click.Path(path_type=Path, dir_okay=False), help="CSV of source value,category code.")
@click.option("--map", "map_pairs", multiple=True, metavar="SRC=CODE", help="Map one source category to a code (repeatable).")
@click.option("--source", default="import", show_default=True, help="Channel name the incidents are stored under.")
@click.option("--tz", default=None, help="Time zone of times without an offset (default: CITYBRAIN_TIMEZONE).")
@click.option("--crs", "crs_name", default="EPSG:4326", show_default=True, help="Coordinate system: EPSG code or gcj02.")
@click.option(
    "--rejects", type=click.Path(path_type=Path, dir_okay=False), help="Where to write rejected rows (default: FILE.rejects.csv)."
)
@click.option("--encoding", default="utf-8-sig", show_default=True, help="Text encoding of the file (e.g. gb18030).")
@click.option("--chunk-size", default=20_000, show_default=True, type=click.IntRange(min=1), help="Rows per transaction.")
def import_incidents(
    file: Path,
    time_col,
    lon_col,
    lat_col,
    category_col,
    id_col,
    description_col,
    priority_col,
    address_col,
    category_map,
    map_pairs,
    source,
    tz,
    crs_name,
    rejects,
    encoding,
    chunk_size,
) -> None:
    """Import incidents from a CSV or GeoJSON points FILE (re-importing the same file adds nothing)."""
    from data.errors import CityBrainError
    from data.incidents.file_import import import_incident_file
    from data.incidents.file_reading import ColumnMapping, read_category_map

    settings = Settings.from_env()
    mapping = ColumnMapping(
        time=time_col,
        lon=lon_col,
        lat=lat_col,
        category=category_col,
        id=id_col,
        description=description_col,
        priority=priority_col,
        address=address_col,
    )
    try:
        categories = read_category_map(category_map, map_pairs)
    except CityBrainError as exc:
        raise click.ClickException(str(exc)) from None
    with command_store() as engine:
        report = import_incident_file(
            engine,
            file,
            mapping,
            source=source,
            tz=tz or settings.timezone,
            crs=crs_name,
            category_map=categories,
            rejects_path=rejects,
            encoding=encoding,
            chunk_rows=chunk_size,
        )
    for line in report.summary_lines():
        click.echo(line)


COMMANDS = [import_incidents]
