"""The one table between Tideflow errors and gRPC status codes, used in both directions.

The server's interceptor turns a raised :class:`~tideflow.errors.TideflowError` into its status
code and message (plus the error class name and structured fields in trailing metadata); the
client turns the status back into the same class, so ``except NotFoundError`` works the same
against an in-process client and a remote one.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from tideflow import errors

ERROR_CLASS_KEY = "x-tideflow-error"
"""Trailing metadata: the error class name, so subclasses sharing a status code survive."""
ERROR_FIELDS_KEY = "x-tideflow-error-fields"
"""Trailing metadata: the error's structured fields as JSON."""

STATUS_OF: dict[type[errors.TideflowError], grpc.StatusCode] = {
    errors.GraphError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.IllegalTransitionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.StoreError: grpc.StatusCode.INTERNAL,
    errors.UserCodeError: grpc.StatusCode.ABORTED,
    errors.TideflowError: grpc.StatusCode.UNKNOWN,
}

# Without the class name (another client, a proxy), the status code alone picks the class.
ERROR_OF: dict[grpc.StatusCode, type[errors.TideflowError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: errors.UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.UnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhaustedError,
    grpc.StatusCode.ABORTED: errors.UserCodeError,
    grpc.StatusCode.INTERNAL: errors.StoreError,
}

_CLASSES: dict[str, type[errors.TideflowError]] = {cls.__name__: cls for cls in STATUS_OF}


def status_of(error: errors.TideflowError) -> grpc.StatusCode:
    """The status code of ``error`` (its nearest class in the table)."""
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.UNKNOWN


def error_fields(error: errors.TideflowError) -> dict[str, Any]:
    """The structured fields of ``error`` that travel with it."""
    if isinstance(error, errors.GraphError):
        return {"problems": [vars(problem) for problem in error.problems]}
    names = ("field", "entity", "key", "current", "requested", "node", "user_traceback")
    fields: dict[str, Any] = {
        name: value
        for name in names
        if isinstance(value := getattr(error, name, None), str | int | float | bool)
    }
    if isinstance(error, errors.IllegalTransitionError):
        fields["allowed"] = list(error.allowed)
    return fields


def trailing_metadata(error: errors.TideflowError) -> tuple[tuple[str, str], ...]:
    """What the server sends after a failed call, beside the status."""
    return (
        (ERROR_CLASS_KEY, type(error).__name__),
        (ERROR_FIELDS_KEY, json.dumps(error_fields(error), default=str)),
    )


def rebuild_error(code: grpc.StatusCode, message: str, metadata: Any) -> errors.TideflowError:
    """The exception a client raises for a failed call: the same class the server raised."""
    pairs = dict(metadata or ())
    cls = _CLASSES.get(pairs.get(ERROR_CLASS_KEY, "")) or ERROR_OF.get(code, errors.TideflowError)
    try:
        fields = json.loads(pairs.get(ERROR_FIELDS_KEY) or "{}")
    except ValueError:
        fields = {}
    error = _construct(cls, message, fields)
    return error


def _construct(
    cls: type[errors.TideflowError], message: str, fields: dict[str, Any]
) -> errors.TideflowError:
    """Make ``cls`` with ``message`` as its text, whatever its constructor takes."""
    if cls is errors.GraphError:
        problems = [errors.GraphProblem(**p) for p in fields.get("problems", [])]
        error: errors.TideflowError = errors.GraphError(problems or message)
    else:
        error = cls.__new__(cls)
        Exception.__init__(error, message)
    for name, value in fields.items():
        if name == "allowed" and isinstance(value, list):
            setattr(error, name, tuple(str(v) for v in value))
        elif name != "problems":
            setattr(error, name, value)
    if isinstance(error, errors.IllegalTransitionError) and not hasattr(error, "allowed"):
        error.allowed = ()
    if isinstance(error, errors.InvalidArgumentError) and not hasattr(error, "field"):
        error.field = None
    return error
