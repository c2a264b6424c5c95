"""The one cache: in-process by default, Redis when CITYBRAIN_CACHE_URL points at it."""

import socket
import uuid

import pytest
from flask import Flask
from flask_caching import Cache

from dashboard.cache import cache_config
from tests.conftest import skip_or_fail

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _roundtrip(config: dict) -> object:
    app = Flask(__name__)
    app.config.update(config)
    cache = Cache(app)
    key = f"test-{uuid.uuid4().hex}"
    with app.app_context():
        cache.set(key, {"open": 42})
        value = cache.get(key)
        cache.delete(key)
    return value


def test_default_cache_is_in_process():
    assert cache_config("")["CACHE_TYPE"] == "SimpleCache"
    assert _roundtrip(cache_config("")) == {"open": 42}


def test_tests_use_no_cache():
    assert cache_config("", testing=True)["CACHE_TYPE"] == "NullCache"
    assert _roundtrip(cache_config("", testing=True)) is None


@pytest.mark.redis
def test_redis_cache_is_shared_through_the_server():
    if not _redis_up():
        skip_or_fail("no Redis server at 127.0.0.1:6379")
    config = cache_config(REDIS_URL)
    assert config["CACHE_TYPE"] == "RedisCache"
    assert _roundtrip(config) == {"open": 42}
