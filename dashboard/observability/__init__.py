"""Operations: logging (text or JSON), a request id on every request and log line, one access-log line per request, /metrics for Prometheus, trusted proxies.

- request_id.py: the request's id (X-Request-ID in, or made) and where error bodies read it from
- logs.py: configure_logging for every process (python app.py, gunicorn's workers, the worker)
- requests.py: the first and last hook of every request (id, access line, figures) and ProxyFix
- metrics.py: the figures (requests by route, open streams, change-feed lag) and the /metrics route
- store_figures.py: what /metrics reads from the store when scraped (jobs, webhook outbox, feed head)
- gunicorn_conf.py: gunicorn's hooks for the production command (metrics across workers, proxies)
"""
