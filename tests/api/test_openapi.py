"""`GET /openapi.json`: generated from the routes and the pydantic models, valid OpenAPI 3.1."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from werkzeug.test import Client

from app import app
from chalicelib.api import models
from chalicelib.api.errors import PROBLEM_JSON
from chalicelib.api.openapi import OPERATIONS, REF_TEMPLATE, openapi_document
from chalicelib.scenarios.model import Scenario

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(app.routes)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_route_of_the_app_is_described(document: dict[str, Any]) -> None:
    routes = {
        (path, method.lower())
        for path, methods in app.routes.items()
        if not path.startswith("/local/")
        for method in methods
    }
    assert {(path, method) for path, method, _ in operations(document)} == routes
    assert ("/openapi.json", "GET") in OPERATIONS


def test_every_described_operation_is_a_route() -> None:
    assert {key for key in OPERATIONS if key[1] not in app.routes.get(key[0], {})} == set()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_a_route_without_a_description_fails_loudly() -> None:
    entry = app.routes["/scenarios"]["GET"]
    with pytest.raises(KeyError, match="/undescribed"):
        openapi_document({**app.routes, "/undescribed": {"GET": entry}})


def test_the_local_stacks_routes_are_left_out() -> None:
    entry = app.routes["/scenarios"]["GET"]
    document = openapi_document({**app.routes, "/local/clock": {"GET": entry, "POST": entry}})
    assert not [path for path in document["paths"] if path.startswith("/local/")]


def test_request_bodies_are_the_models_that_validate_them(document: dict[str, Any]) -> None:
    def body(path: str, method: str) -> Any:
        return document["paths"][path][method]["requestBody"]["content"]["application/json"][
            "schema"
        ]

    ref = REF_TEMPLATE.format(model="{}")
    assert body("/scenarios", "post") == {
        "anyOf": [{"$ref": ref.format("Scenario")}, {"$ref": ref.format("FromTemplate")}]
    }
    assert body("/scenarios/{scenario_id}", "put") == {"$ref": ref.format("Scenario")}
    assert body("/events", "post") == {
        "anyOf": [{"$ref": ref.format("EventIn")}, {"$ref": ref.format("EventBatch")}]
    }
    assert body("/profiles/{profile_db}/{profile_id}", "put") == {
        "$ref": ref.format("ProfileUpsert")
    }
    schemas = document["components"]["schemas"]
    own = Scenario.model_json_schema(ref_template=REF_TEMPLATE)
    definitions = own.pop("$defs")
    assert schemas["Scenario"] == own
    assert {name: schemas[name] for name in definitions} == definitions
    assert schemas["EventIn"]["required"] == ["type", "profile_id"]
    # the scenario model's own definitions land in components, not in nested $defs
    assert "SendNode" in schemas
    assert "$defs" not in str(document)


def test_answers_are_the_response_models(document: dict[str, Any]) -> None:
    def answer(path: str, method: str, status: str) -> Any:
        return document["paths"][path][method]["responses"][status]["content"]["application/json"][
            "schema"
        ]

    ref = REF_TEMPLATE.format(model="{}")
    assert answer("/scenarios", "post", "201") == {"$ref": ref.format("ScenarioOut")}
    assert answer("/scenarios", "get", "200") == {"$ref": ref.format("ScenarioList")}
    assert answer("/scenarios/{scenario_id}/activate", "post", "200") == {
        "$ref": ref.format("Activation")
    }
    assert answer("/events", "post", "202") == {"$ref": ref.format("EventAcceptance")}
    assert answer("/scenarios/{scenario_id}/stats", "get", "200") == {
        "$ref": ref.format("ScenarioStats")
    }
    assert (
        "content"
        not in document["paths"]["/profiles/{profile_db}/{profile_id}"]["delete"]["responses"][
            "204"
        ]
    )
    stats = document["components"]["schemas"]["ScenarioStats"]
    always = {
        name for name, field in models.ScenarioStats.model_fields.items() if field.is_required()
    }
    assert set(stats["required"]) == always


def test_errors_are_problem_documents(document: dict[str, Any]) -> None:
    shared = document["components"]["responses"]
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                assert response == {"$ref": f"#/components/responses/{status}"}, (path, method)
                assert list(shared[status]["content"]) == [PROBLEM_JSON]
    problem = document["components"]["schemas"]["ProblemDocument"]
    assert {"detail", "problems"} <= set(problem["properties"])


def test_the_api_key_guards_everything_but_hooks_tracking_links_and_this_document(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
    }
    assert document["security"] == [{"apiKey": []}]
    for path, method, operation in operations(document):
        public = path.startswith(("/hooks/", "/t/")) or path in (
            "/openapi.json",
            "/console",  # the console's page and files: the page asks for the key
            "/console/{name}",
        )
        assert (operation.get("security") == []) == public, (path, method)
        if not public:
            assert "401" in operation["responses"], (path, method)
    hook = document["paths"]["/hooks/{scenario_id}/{trigger_id}"]["post"]
    headers = {p["name"] for p in hook["parameters"] if p["in"] == "header"}
    assert headers == {"X-Timestamp", "X-Signature", "Idempotency-Key"}


def test_operation_ids_are_the_view_names(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert document["paths"]["/scenarios"]["post"]["operationId"] == "create_scenario"
    for _, _, operation in operations(document):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ids


def test_served_without_an_api_key(wsgi_app: Any, document: dict[str, Any]) -> None:
    answer = Client(wsgi_app).get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json == document


def test_a_simulation_names_exactly_one_scenario(document: dict[str, Any]) -> None:
    # the route refuses anything else with a 400: the document says so too
    from jsonschema import Draft202012Validator

    schema = {"$ref": REF_TEMPLATE.format(model="SimulationRequest"), **document}
    valid = Draft202012Validator(schema).is_valid
    assert valid({"scenario_id": "s1"})
    assert valid({"scenario": {"name": "x"}})
    assert not valid({})
    assert not valid({"scenario_id": "s1", "scenario": {"name": "x"}})
    assert not valid({"scenario": None})
