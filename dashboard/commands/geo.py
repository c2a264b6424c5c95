"""`python app.py import-boundaries`: load district/street/community/grid boundaries, or generate a grid."""

from __future__ import annotations

import click

from dashboard.commands import command_store


@click.command("import-boundaries")
@click.argument("file", required=False, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--level",
    required=True,
    help="Level of the units: city, district, street, community, grid, micro (or 0-5, or 区县/街道/社区/网格).",
)
@click.option("--code-field", default="code", show_default=True, help="Field holding each unit's unique code.")
@click.option("--name-field", default="name", show_default=True, help="Field holding the English (or only) name.")
@click.option("--name-zh-field", default=None, help="Field holding the Chinese name (defaults to the name field).")
@click.option(
    "--parent-field", default=None, help="Field holding the parent unit's code; otherwise parents are found by overlap."
)
@click.option("--crs", "source_crs", default=None, help="Source CRS, e.g. EPSG:4547, or gcj02; otherwise taken from the file.")
@click.option("--generate-grid", type=click.Choice(["square", "hex"]), default=None, help="Tile the units with grid cells.")
@click.option(
    "--cell-size", type=float, default=None, help="Grid cell size in metres (side of a square, flat-to-flat width of a hex)."
)
def import_boundaries_command(
    file, level, code_field, name_field, name_zh_field, parent_field, source_crs, generate_grid, cell_size
) -> None:
    """Import boundaries from FILE (GeoJSON, zipped Shapefile or GeoPackage) as units of --level.

    With --generate-grid, tile the imported units (or, without FILE, the level's existing units)
    with grid cells clipped to them. Everything happens in one transaction: a bad file changes nothing.
    """
    from data.geo.importer import import_boundaries

    with command_store() as engine:
        report = import_boundaries(
            engine,
            file,
            level,
            code_field=code_field,
            name_field=name_field,
            name_zh_field=name_zh_field,
            parent_field=parent_field,
            source_crs=source_crs,
            generate_grid=generate_grid,
            cell_size=cell_size,
        )
    for line in report.summary_lines():
        click.echo(line)


COMMANDS = [import_boundaries_command]
