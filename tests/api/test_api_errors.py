"""Bad input answers a 4xx problem document, never a 500: the cases schemathesis found."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from chalicelib.api.errors import BadRequest, translate

PROBLEM = "application/problem+json"


def put_profile(client: Any, body: str, profile_id: str = "ada") -> Any:
    return client.put(
        f"/profiles/customers/{profile_id}", data=body, content_type="application/json"
    )


def assert_problem(answer: Any, status: int, detail: str) -> None:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == PROBLEM
    assert detail in answer.json["detail"]


@pytest.mark.parametrize("limit", ["²", "١٢", "-1", "0", "1001", "ten"])
def test_a_page_size_must_be_an_ascii_whole_number(client: Any, limit: str) -> None:
    # "²".isdigit() is true but int("²") raises: it used to answer 500
    assert_problem(client.get("/scenarios", query_string={"limit": limit}), 400, "'limit'")


def test_next_runs_count_is_checked_the_same_way(client: Any) -> None:
    answer = client.get("/scenarios/nope/triggers/t/next-runs", query_string={"count": "³"})
    assert_problem(answer, 400, "'count'")


def test_a_path_parameter_has_at_most_200_characters(client: Any) -> None:
    assert_problem(client.get(f"/profiles/customers/{'x' * 201}"), 400, "'profile_id'")
    assert client.get(f"/profiles/customers/{'x' * 200}").status_code == 404


@pytest.mark.parametrize(
    "number",
    ["1e-200", "1e200", "123456789012345678901234567890123456789", "NaN", "Infinity", "-Infinity"],
)
def test_a_number_dynamodb_cannot_hold_is_a_400(client: Any, number: str) -> None:
    # 1e-200 used to fail in the DynamoDB serializer (decimal.Underflow): 500
    answer = put_profile(client, f'{{"fields": {{"score": {number}}}}}')
    assert_problem(answer, 400, "$.fields.score")
    assert client.get("/profiles/customers/ada").status_code == 404  # nothing changed


def test_numbers_within_dynamodbs_range_are_kept(client: Any) -> None:
    fields = {"small": 1e-120, "big": 1.5e120, "exact": 12345678901234567890123456789012345678}
    answer = put_profile(client, json.dumps({"fields": fields}), "numbers")
    assert answer.status_code == 200
    assert answer.json["fields"] == fields


def test_a_lone_surrogate_is_a_400(client: Any) -> None:
    # valid JSON, but not Unicode: it used to fail inside the DynamoDB client (500)
    for body in ('{"name": "\\ud800"}', '{"name": "a", "tags": {"\\udab2": 1}}'):
        answer = client.post("/scenarios", data=body, content_type="application/json")
        assert answer.status_code == 400, body
        assert answer.headers["Content-Type"] == PROBLEM


def test_an_empty_key_is_a_400(client: Any) -> None:
    # stored, it could not be read back (500 on every later GET)
    answer = client.post(
        "/scenarios", data='{"name": "a", "vars": {"": 1}}', content_type="application/json"
    )
    assert_problem(answer, 400, "$.vars: keys must be non-empty")


def test_nesting_deeper_than_dynamodb_allows_is_a_400(client: Any) -> None:
    deep: Any = 1
    for _ in range(30):
        deep = {"a": deep}
    assert_problem(put_profile(client, json.dumps({"fields": deep})), 400, "nests deeper")


def test_nesting_deeper_than_the_json_parser_allows_is_a_400(client: Any) -> None:
    # json.loads raises RecursionError (not a ValueError) here: it used to answer 500
    body = '{"fields": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert_problem(put_profile(client, body), 400, "nests deeper")


def token(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(
    "next_token", ["%%%", token(["pk"]), token({"pk": {"Q": "x"}}), token({"pk": {"N": 1}})]
)
def test_a_page_token_that_is_not_a_key_is_a_400(client: Any, next_token: str) -> None:
    # {"pk": {"Q": ...}} used to reach the DynamoDB client (ParamValidationError): 500
    answer = client.get("/scenarios", query_string={"next_token": next_token})
    assert_problem(answer, 400, "next_token")


def test_dynamodb_refusing_a_start_key_is_a_400() -> None:
    # a token of the right shape naming other attributes: DynamoDB itself refuses it
    refused = ClientError(
        {
            "Error": {
                "Code": "ValidationException",
                "Message": "The provided starting key is invalid: The provided key element "
                "does not match the schema",
            }
        },
        "Scan",
    )
    assert isinstance(translate(refused), BadRequest)
    other = ClientError({"Error": {"Code": "ValidationException", "Message": "x"}}, "Scan")
    with pytest.raises(ClientError):
        translate(other)


def test_journeys_keep_their_own_page_token(client: Any) -> None:
    answer = client.get("/profiles/customers/ada/journeys", query_string={"next_token": "5"})
    assert answer.status_code == 200
    assert_problem(
        client.get("/profiles/customers/ada/journeys", query_string={"next_token": "x"}),
        400,
        "next_token",
    )


def test_invalid_json_is_a_400(client: Any) -> None:
    assert_problem(put_profile(client, '{"fields": '), 400, "not valid JSON")


def test_a_field_at_fault_is_named(client: Any) -> None:
    answer = put_profile(client, '{"fields": {}, "source": "fax"}')
    assert_problem(answer, 400, "$.source")
    assert answer.json["problems"][0]["path"] == "$.source"


def test_search_by_text(client: Any) -> None:
    # `search` is a DynamoDB reserved word: the filter used to fail (ValidationException, 500)
    created = client.post(
        "/scenarios", data='{"name": "Welcome series"}', content_type="application/json"
    )
    assert created.status_code == 201
    answer = client.get("/scenarios", query_string={"q": "welcome"})
    assert answer.status_code == 200
    assert created.json["id"] in [s["id"] for s in answer.json["scenarios"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/scenarios", '{"name": "a"}'),
        ("PUT", "/profiles/customers/ada", '{"fields": {}}'),
        ("POST", "/events", '{"type": "x", "profile_id": "ada"}'),
    ],
)
def test_a_body_without_content_type_is_a_415_saying_so(
    client: Any, method: str, path: str, body: str
) -> None:
    # Chalice reads such a body as no JSON at all: "$: Input should be a valid dictionary"
    answer = client.open(path, method=method, data=body)
    assert "Content-Type" not in answer.request.headers
    assert_problem(answer, 415, "Content-Type")
    assert client.get("/profiles/customers/ada").status_code == 404  # nothing changed


def test_a_method_the_route_lacks_is_a_405_naming_its_methods(client: Any) -> None:
    answer = client.open("/scenarios", method="PATCH")
    assert_problem(answer, 405, "PATCH")
    assert answer.headers["Allow"] == "GET, POST"


def test_a_method_the_route_lacks_is_refused_before_the_key_is_asked_for(wsgi_app: Any) -> None:
    answer = Client(wsgi_app).delete("/scenarios")
    assert_problem(answer, 405, "DELETE")
    assert answer.headers["Allow"] == "GET, POST"


def test_path_parameters_are_percent_decoded(client: Any) -> None:
    answer = put_profile(client, '{"fields": {}}', "bob%40example.com")
    assert answer.status_code == 200
    assert answer.json["profile_id"] == "bob@example.com"
    assert client.get("/profiles/customers/bob@example.com").status_code == 200
