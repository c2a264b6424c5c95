"""Spreadsheet-safe cells for every export (CSV and Excel): text a spreadsheet would run as a formula is neutralised."""

from __future__ import annotations

# A spreadsheet reads a cell opening with one of these as a formula (or as a DDE call: `=cmd|...`), and strips a
# leading tab or carriage return before doing so. Names come from boundary files, reports and administrators.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: object) -> bool:
    """Whether `value` is text a spreadsheet would read as a formula; numbers (negative ones too) never are."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def safe_cell(value: object) -> object:
    """The value to write into a CSV cell: formula-like text gets a leading single quote, anything else is unchanged.

    Spreadsheets show a quote-prefixed cell as text, and the quote tells a reader the cell was neutralised.
    """
    return "'" + value if is_formula_like(value) else value


def safe_row(row) -> list:
    """`safe_cell` over a row (any iterable of values)."""
    return [safe_cell(value) for value in row]
