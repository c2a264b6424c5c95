"""Geography: the management grid's units (district → street → community → grid), boundary import, CRSs, grids, point → grid.

The map's geometry is simplified once per units version and stored for every process (prepared.py).
"""
