"""Schemathesis against `GET /openapi.json`, in-process (moto, the app behind a WSGI adapter).

For every operation it sends generated requests, valid and invalid (schemathesis's
examples, coverage and fuzzing phases), then follows the document's links statefully;
every answer must be no 5xx, and a status code, content type and body the document
declares. Bounded: `SCENARIA_FUZZ_EXAMPLES` (default 10) fuzzed examples per operation
and as many stateful runs, with a fixed seed (the same cases on every run, about a
minute on two cores); `SCENARIA_FUZZ_RANDOM=1` draws new cases.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from app import app
from tests.api.gateway import ApiGatewayWSGI

EXAMPLES = int(os.environ.get("SCENARIA_FUZZ_EXAMPLES", "10"))
STEPS = 6  # calls per stateful run
FIXED_SEED = not os.environ.get("SCENARIA_FUZZ_RANDOM")  # set it to explore new cases
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The examples and coverage phases (schema examples; boundary values of every keyword)
# walk the schema exhaustively: on the recursive scenario and condition schemas that
# takes minutes (coverage never ends), and on POST /events it sends hundreds of
# 500-event batches (and 1,000-product feeds). Those operations are fuzzed only.
FUZZED_ONLY = (
    "create_scenario",
    "replace_scenario",
    "define_segment",
    "send_segment",
    "post_events",
    "put_product",
    "import_products",
    "put_list",
)
# Valid requests (by the document) of these operations must not be refused with a 400:
# schemathesis's positive_data_acceptance check. The import and the simulation take
# recursive free-form JSON, which the examples and coverage phases would walk for
# minutes: they are fuzzed only. A simulated scenario the document admits may still be
# no valid graph, which JSON Schema cannot say (the operation's description says so):
# there a 422 listing the `problems` is an answer too.
ACCEPTED = ("list_scenarios", "profiles_at_node", "scenario_versions")
ACCEPTED_FUZZED = ("import_profiles", "simulate_scenario")
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-operation-id-regex": f"^({'|'.join(FUZZED_ONLY)})$",
                "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}},
            },
        ]
    }
)


FUZZING = settings(  # every fuzzed test: repeatable, no example database, no deadline
    max_examples=EXAMPLES,
    derandomize=FIXED_SEED,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# Loaded at collection: the document needs no AWS (the calls do: see the `stack` fixture).
schema = schemathesis.openapi.from_wsgi("/openapi.json", ApiGatewayWSGI(app), config=CONFIG)
acceptance = schemathesis.openapi.from_wsgi(
    "/openapi.json", ApiGatewayWSGI(app), config=SchemathesisConfig.from_dict({})
).include(operation_id_regex=f"^({'|'.join(ACCEPTED)})$")
acceptance_fuzzed = schemathesis.openapi.from_wsgi(
    "/openapi.json",
    ApiGatewayWSGI(app),
    config=SchemathesisConfig.from_dict(
        {"phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}}}
    ),
).include(operation_id_regex=f"^({'|'.join(ACCEPTED_FUZZED)})$")


@schema.parametrize()
@FUZZING
def test_api_conforms_to_its_openapi_document(
    case: Any, stack: None, drop_queued_work: Callable[[], None]
) -> None:
    try:
        case.call_and_validate(headers={"X-Api-Key": os.environ["SCENARIA_API_KEY"]}, checks=CHECKS)
    finally:
        drop_queued_work()


@acceptance.parametrize()
@FUZZING
def test_valid_requests_are_accepted(
    case: Any, stack: None, drop_queued_work: Callable[[], None]
) -> None:
    """What the document says is valid is not refused: the document says what the
    validation accepts. A page token is valid only as the API issued it (the stateful
    test follows real ones), so a made-up one is left out of valid requests."""
    if case.query and case.query.get("next_token"):
        del case.query["next_token"]
    _accepted(case, drop_queued_work)


@acceptance_fuzzed.parametrize()
@FUZZING
def test_valid_free_form_json_is_accepted(
    case: Any, stack: None, drop_queued_work: Callable[[], None]
) -> None:
    """Profile fields, event data and simulated scenarios the document admits are stored
    or simulated, not refused: the document states what DynamoDB holds."""
    _accepted(case, drop_queued_work)


def _accepted(case: Any, drop_queued_work: Callable[[], None]) -> None:
    try:
        response = case.call(headers={"X-Api-Key": os.environ["SCENARIA_API_KEY"]})
        if case.operation.label == "POST /scenarios/simulate" and response.status_code == 422:
            assert response.json()["problems"], response.text  # a valid shape, no valid graph
            return
        case.validate_response(response, checks=[not_a_server_error, positive_data_acceptance])
    finally:
        drop_queued_work()


def test_linked_operations_conform(stack: None, drop_queued_work: Callable[[], None]) -> None:
    """Stateful: follow the document's links (create a scenario, then read, activate,
    trash it...), so the operations also meet ids that exist."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"X-Api-Key": os.environ["SCENARIA_API_KEY"]}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

        def teardown(self) -> None:
            drop_queued_work()

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=FIXED_SEED,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
