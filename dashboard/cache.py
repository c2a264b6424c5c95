"""The one flask-caching Cache: in-process by default, Redis when CITYBRAIN_CACHE_URL says so."""

from __future__ import annotations

from flask_caching import Cache

cache = Cache()


def cache_config(cache_url: str, testing: bool = False) -> dict:
    """flask-caching config for a cache URL ('' = SimpleCache, redis://... = Redis, 'null' = none)."""
    if testing or cache_url == "null":
        return {"CACHE_TYPE": "NullCache"}
    if cache_url.startswith(("redis://", "rediss://", "unix://")):
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": cache_url,
            "CACHE_KEY_PREFIX": "citybrain:",
            "CACHE_DEFAULT_TIMEOUT": 3600,
        }
    return {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 2000, "CACHE_DEFAULT_TIMEOUT": 3600}
