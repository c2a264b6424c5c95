"""Early warning (预测预警): detection of surges, hotspots, chronic places and deadlines at risk; the alerts store; the pass runner."""
