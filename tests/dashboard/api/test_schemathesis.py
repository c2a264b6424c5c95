"""Schemathesis against /api/v1/openapi.json: generated requests (valid and invalid) never get a server error or an off-schema answer."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from dashboard.api.openapi import openapi_document
from data.accounts.apikeys import create_key
from tests.api_helpers import build_api_world
from tests.factories import drive_to, make_incident

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzz_world(engine):
    api = build_api_world(engine, CITYBRAIN_SSE_STREAM_SECONDS=0.2)
    with engine.begin() as conn:
        # One key that may do everything, so generated requests reach the code behind the door.
        api.fuzz_key = create_key(
            conn, "fuzz", ["intake", "actions", "read"], department_code="cg", rate_limit="100000/minute"
        ).secret
        # A few incidents in several states, so ids 1..4 exist and actions meet real incidents.
        for state in ("reported", "dispatched", "acknowledged", "closed"):
            incident_id = make_incident(conn, api.world.categories["garbage"], at=api.world.lattice.center(0))
            drive_to(conn, incident_id, state)
    return api


# The document is built from code alone, so the operations are known at collection time.
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def test_the_document_is_a_valid_openapi_schema_with_every_operation():
    assert {op.label for op in OPERATIONS} >= {
        "POST /api/v1/incidents",
        "GET /api/v1/feed",
        "POST /api/v1/incidents/{incident_id}/actions",
    }


def test_every_operation_answers_within_its_schema(fuzz_world):
    """Valid and invalid requests for every operation: no 5xx, every status, type and body as documented."""
    failures = []
    for operation in OPERATIONS:
        for mode in MODES:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
            def run(case):
                case.call_and_validate(app=fuzz_world.server, headers={"X-API-Key": fuzz_world.fuzz_key}, checks=CHECKS)

            started = time.perf_counter()
            try:
                run()
            except Unsatisfiable:
                pass  # nothing invalid can be sent to an operation without inputs
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{operation.label} ({mode}): {exc}")
            print(f"{operation.label} {mode}: {time.perf_counter() - started:.2f}s")
    assert not failures, "\n\n".join(failures)
