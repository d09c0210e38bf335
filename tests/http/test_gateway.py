"""The in-process stack answers as API Gateway does in front of the deployed one: path
parameters percent-decoded, a method a route lacks refused with 405 and `Allow`."""

from __future__ import annotations

from tests.e2e.harness import Stack
from tests.http.support import assert_problem, send


def test_path_parameters_are_percent_decoded(shared_stack: Stack) -> None:
    stored = shared_stack.put("/profiles/customers/ada%40example.com", {"fields": {}})
    assert stored["profile_id"] == "ada@example.com"
    assert (
        shared_stack.get("/profiles/customers/ada@example.com")["profile_id"]
        == stored["profile_id"]
    )


def test_an_encoded_slash_stays_in_its_parameter(shared_stack: Stack) -> None:
    stored = shared_stack.put("/profiles/customers/a%2Fb", {"fields": {"n": 1}})
    assert stored["profile_id"] == "a/b"
    assert shared_stack.get("/profiles/customers/a%2Fb")["fields"] == {"n": 1}


def test_a_method_the_route_lacks_is_a_405_with_allow(shared_stack: Stack) -> None:
    answer = send(shared_stack, "PATCH", "/profiles/customers/ada")
    assert_problem(answer, 405, "PATCH")
    assert answer.headers["Allow"] == "DELETE, GET, PUT"


def test_an_unknown_route_is_a_404_problem(shared_stack: Stack) -> None:
    assert_problem(send(shared_stack, "GET", "/no/such/route"), 404, "/no/such/route")
