import pytest

from tideflow.domain.names import MAX_NAME_LENGTH, name_problem
from tideflow.errors import (
    GraphError,
    GraphProblem,
    IllegalTransitionError,
    InvalidArgumentError,
    NotFoundError,
    TideflowError,
)


def test_graph_error_lists_every_problem_with_its_place():
    error = GraphError(
        [
            GraphProblem("first", workflow="w", job="j", node="n", location="f.py:3"),
            GraphProblem("second", workflow="w"),
        ]
    )
    assert isinstance(error, InvalidArgumentError)
    assert isinstance(error, TideflowError)
    assert str(error) == (
        "workflow graph has 2 problems:\n"
        "  - workflow 'w', job 'j', node 'n': first (at f.py:3)\n"
        "  - workflow 'w': second"
    )


def test_structured_fields():
    error = NotFoundError("model", "ctr")
    assert (error.entity, error.key, str(error)) == ("model", "ctr", "model 'ctr' not found")
    moved = IllegalTransitionError(
        "model version ctr/3", "GENERATED", "DEPLOYED", allowed=["VALIDATED"]
    )
    assert "GENERATED -> DEPLOYED" in str(moved)
    assert "allowed from GENERATED: VALIDATED" in str(moved)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ctr_online", None),
        ("_x-1", None),
        ("", "must not be empty"),
        ("1abc", "is not valid"),
        ("a.b", "is not valid"),
        ("a" * (MAX_NAME_LENGTH + 1), "the limit is 128"),
        (5, "must be a string"),
    ],
)
def test_name_rules(name, expected):
    problem = name_problem(name, "job name")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem
