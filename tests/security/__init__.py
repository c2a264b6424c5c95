"""Regression tests of the holes found by trying to break in (issue 13), one module per hole."""
