"""Geography: the management grid's units (district → street → community → grid), boundary import, CRSs, grids, point → grid."""
