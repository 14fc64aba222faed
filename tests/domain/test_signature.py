"""Model signatures: inferred from an input example, checked against requests."""

from __future__ import annotations

import pytest

from tideflow.domain.signature import FieldSpec, FieldType, Signature, infer_signature
from tideflow.errors import InvalidArgumentError


def test_infers_names_types_and_required_from_records() -> None:
    signature = infer_signature(
        [
            {"age": 31, "price": 2, "segment": "a", "mobile": True, "note": None},
            {"age": 40, "price": 2.5, "segment": "b", "mobile": False, "note": "x"},
            {"age": 22, "price": 1.0, "segment": "c", "mobile": True},
        ]
    )
    assert signature.inputs == (
        FieldSpec("age", FieldType.LONG),
        FieldSpec("price", FieldType.DOUBLE),  # integers among doubles: a double
        FieldSpec("segment", FieldType.STRING),
        FieldSpec("mobile", FieldType.BOOLEAN),
        FieldSpec("note", FieldType.STRING, required=False),
    )
    assert (
        signature.describe()
        == "age:long, price:double, segment:string, mobile:boolean, note:string?"
    )
    assert Signature.from_json(signature.to_json()) == signature


def test_infers_from_a_dataframe_with_numpy_values() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.5, 2.0], "n": [1, 2]})
    signature = infer_signature(frame)
    assert signature.describe() == "x:double, n:long"
    assert signature.example == ({"x": 1.5, "n": 1}, {"x": 2.0, "n": 2})


@pytest.mark.parametrize(
    ("example", "match"),
    [
        ([], "non-empty list of records"),
        ("abc", "non-empty list of records"),
        ([{"x": None}], "'x' is null in every record"),
        ([{"x": 1}, {"x": "a"}], "'x' holds both long and string"),
        ([{"x": [1, 2]}], "'x' holds a list"),
    ],
)
def test_refuses_a_bad_example(example: object, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        infer_signature(example)


def test_check_names_the_field_and_what_was_expected() -> None:
    signature = infer_signature([{"age": 3, "segment": "a", "score": 0.5}])
    signature.check([{"age": 4, "segment": "b", "score": 1, "extra": [1]}])  # extras are fine
    with pytest.raises(
        InvalidArgumentError,
        match=r"record 1: required field 'segment' is missing \(expected string\)",
    ) as missing:
        signature.check([{"age": 4, "segment": "b", "score": 1}, {"age": 4, "score": 1}])
    assert missing.value.field == "segment"
    with pytest.raises(
        InvalidArgumentError, match=r"field 'age' is 'x' \(str\); expected long"
    ) as wrong:
        signature.check([{"age": "x", "segment": "b", "score": 1}])
    assert wrong.value.field == "age"
    with pytest.raises(InvalidArgumentError, match="expected long"):
        signature.check([{"age": 2.5, "segment": "b", "score": 1}])
    with pytest.raises(InvalidArgumentError, match="expected double"):
        signature.check([{"age": 2, "segment": "b", "score": True}])
    with pytest.raises(InvalidArgumentError, match="'score' is null"):
        signature.check([{"age": 2, "segment": "b", "score": None}])
