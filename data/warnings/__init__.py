"""Early warning (预测预警): one module per detection kind, the alerts store, sensitivity settings, the pass (run in the background by data/jobs/).

surges.py, hotspots.py, chronic.py and deadlines.py each detect one kind over context.py (grids,
reports, the pass's Context) and stats.py; reasons.py words the findings. detect.py runs a pass and
records its findings through alerts.py (alerts, their audit log, operators' actions);
sensitivity.py holds the per-category settings.
"""
