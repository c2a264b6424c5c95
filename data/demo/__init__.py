"""The demo city of Chongqing central urban area: its plan and build, incident history, live simulator, injected warnings.

plan.py lays out districts, streets, communities and grids; city.py stores them with grid workers,
the catalogue (catalogue.py) and a history (history.py, each case's life in lifecycles.py, loaded
by bulk_load.py); users.py adds the demo accounts; simulator.py keeps the city alive while serving;
inject.py plants known early-warning cases and scores the alerts raised.
"""
