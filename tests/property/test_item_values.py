"""Items read back from DynamoDB's wire format are the values boto3's own deserializer
makes of them (then numbers as int or float): `dynamo.from_wire` is the faster path."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters import dynamo

scalars = (
    st.text(max_size=12)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False).filter(  # what DynamoDB's numbers hold
        lambda number: number == 0 or 1e-100 < abs(number) < 1e100
    )
    | st.booleans()
    | st.none()
    | st.sets(st.text(max_size=6), min_size=1, max_size=4)
    | st.sets(st.integers(min_value=-1000, max_value=1000), min_size=1, max_size=4)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(values)
def test_a_value_reads_back_as_boto3_reads_it(value: Any) -> None:
    wire = dynamo.to_wire(value)
    assert dynamo.from_wire(wire) == dynamo._plain(TypeDeserializer().deserialize(wire))


def test_numbers_come_back_as_int_when_whole_and_float_otherwise() -> None:
    item = {"a": {"N": "3"}, "b": {"N": "3.0"}, "c": {"N": "2.5"}, "d": {"N": "1E+2"},
            "e": {"NS": ["1", "1.5"]}, "f": {"NULL": True}, "g": {"L": [{"BOOL": False}]}}  # fmt: skip
    assert dynamo.from_item(item) == {
        "a": 3, "b": 3, "c": 2.5, "d": 100, "e": {1, 1.5}, "f": None, "g": [False],
    }  # fmt: skip
    assert type(dynamo.from_item(item)["b"]) is int
