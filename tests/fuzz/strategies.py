"""Hypothesis strategies built from protobuf descriptors, and the fuzz budget.

Nothing here names an RPC or a message: :func:`rpc_methods` walks every ``*_pb2`` module of
``tideflow.rpc.v1`` and :func:`message_strategy` builds a request from its descriptor, so a new
RPC or field is fuzzed without touching this suite.

Values mix three kinds, so a request gets past the first check often enough to reach deeper
code: plausible ones (``"ctr"``, ``1``), hostile ones (``../``, NUL, unicode, huge and negative
integers, NaN, deep JSON in ``*_json`` fields) and arbitrary ones.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import tideflow.rpc.v1 as generated

EXAMPLES_ENV = "TIDEFLOW_FUZZ_EXAMPLES"
CI_EXAMPLES = 4
"""Examples per RPC and per HTTP route in CI: about 400 in all, derandomised."""


def fuzz_settings(examples: int | None = None) -> settings:
    """The settings of every fuzz property: ``examples`` (or :data:`EXAMPLES_ENV`) per test.

    The CI size is derandomised, so a run is repeatable and a failure reproduces locally; a long
    run (``TIDEFLOW_FUZZ_EXAMPLES=200``) draws fresh examples and prints a blob to replay one.
    No example database: the suite never writes ``.hypothesis/`` into the checkout.
    """
    chosen = os.environ.get(EXAMPLES_ENV)
    count = int(chosen) if chosen else (examples or CI_EXAMPLES)
    return settings(
        max_examples=count,
        derandomize=not chosen,
        deadline=None,
        database=None,
        print_blob=bool(chosen),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
        ],
    )


@dataclass(frozen=True)
class Rpc:
    """One RPC of the API, as its descriptors and generated stub module describe it."""

    method: MethodDescriptor
    grpc_module: ModuleType

    @property
    def name(self) -> str:
        """``Service/Method``."""
        return f"{self.method.containing_service.name}/{self.method.name}"

    @property
    def path(self) -> str:
        """``/tideflow.v1.Service/Method``, as interceptors see it."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def stub_method(self, channel: Any) -> Any:
        """The generated stub's callable for this RPC on ``channel``."""
        stub_class = getattr(self.grpc_module, f"{self.method.containing_service.name}Stub")
        return getattr(stub_class(channel), self.method.name)


def rpc_methods() -> list[Rpc]:
    """Every RPC of every service in ``tideflow.rpc.v1``, from the generated descriptors."""
    found: list[Rpc] = []
    for info in sorted(pkgutil.iter_modules(generated.__path__), key=lambda i: i.name):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{generated.__name__}.{info.name}")
        grpc_module = importlib.import_module(f"{generated.__name__}.{info.name}_grpc")
        for service in module.DESCRIPTOR.services_by_name.values():
            found.extend(Rpc(method, grpc_module) for method in service.methods)
    return found


# -- values ----------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "",
    "../../../../../escape",
    "..",
    "/etc/passwd",
    "a/b",
    "nul\x00byte",
    "\x00",
    "é-ü-名前-🚀",
    "\u202e\u200b",
    " ",
    "x" * 4096,
    "%2e%2e%2f",
    "*",
    "default",
    "' OR 1=1 --",
    "\\..\\..\\windows",
]
PLAUSIBLE_TEXT = ["ctr", "clicks", "train", "a", "default", "START", "DEPLOYED", "1"]
HOSTILE_INTS = [0, 1, 2, -1, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63)]
HOSTILE_FLOATS = [0.0, -0.0, 1e308, -1e308, float("nan"), float("inf"), float("-inf"), 5e-324]


def deep_json(depth: int, *, arrays: bool) -> str:
    """JSON nested ``depth`` levels (arrays or objects): the RecursionError probe."""
    if arrays:
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


JSON_TEXT = [
    "",
    "{}",
    "[]",
    "null",
    '{"lr": 0.05}',
    "{",
    '{"a": NaN}',
    '"\\ud800"',
    "1e999999",
    deep_json(65, arrays=True),
    deep_json(200_000, arrays=True),
    deep_json(200_000, arrays=False),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def text_strategy(field_name: str) -> st.SearchStrategy[str]:
    """Strings for a field: JSON text for ``*_json`` fields, names and paths otherwise."""
    common = st.sampled_from(HOSTILE_TEXT) | st.sampled_from(PLAUSIBLE_TEXT) | st.text(max_size=40)
    if field_name.endswith("_json"):
        encoded = json_values.map(lambda value: json.dumps(value, allow_nan=True))
        return st.sampled_from(JSON_TEXT) | encoded | common
    return common


def _int_strategy(field: FieldDescriptor) -> st.SearchStrategy[int]:
    unsigned = field.type in (
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
    )
    wide = field.type in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    )
    bits = 64 if wide else 32
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    edges = [value for value in HOSTILE_INTS if low <= value <= high] + [low, high]
    return (
        st.sampled_from(edges)
        | st.integers(min_value=-3, max_value=5).filter(lambda v: low <= v <= high)
        | st.integers(min_value=low, max_value=high)
    )


def scalar_strategy(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    """A strategy for one value of a scalar or enum field."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text_strategy(field.name)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=256) | st.just(b"PK\x03\x04" + b"\x00" * 26)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from(HOSTILE_FLOATS) | st.floats(
            width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32
        )
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        # proto3 enums are open: an unknown number travels and must be refused, not crash.
        return st.sampled_from(known) | st.integers(min_value=-(2**31), max_value=2**31 - 1)
    return _int_strategy(field)


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _field_strategy(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if _is_map(field):
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        value = (
            message_strategy(value_field.message_type, depth + 1)
            if value_field.type == FieldDescriptor.TYPE_MESSAGE
            else scalar_strategy(value_field)
        )
        return st.dictionaries(scalar_strategy(key_field), value, max_size=3)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        single: st.SearchStrategy[Any] = message_strategy(field.message_type, depth + 1)
    else:
        single = scalar_strategy(field)
    if field.is_repeated:
        return st.lists(single, max_size=3)
    return single


def message_strategy(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Instances of the message ``descriptor`` with each field set or left unset at random."""
    message_class = message_factory.GetMessageClass(descriptor)
    if depth > 3:  # messages nest (LineageRef in LineageRecord ...): bounded, not infinite
        return st.builds(message_class)
    fields = {field.name: st.none() | _field_strategy(field, depth) for field in descriptor.fields}

    def build(values: dict[str, Any]) -> Any:
        return message_class(**{name: v for name, v in values.items() if v is not None})

    return st.fixed_dictionaries(fields).map(build)


# -- gRPC metadata ----------------------------------------------------------------------------

# Only printable ASCII travels in gRPC metadata; the rest is refused by the client library.
PROJECTS = ["fuzz", "fuzz", "fuzz", "default", "", "../x", "a" * 300, "p q", "NUL%00"]
AUTHORIZATIONS = [None, None, None, "tf_bogus", "Token tf_bogus", "Bearer ", "Bearer tf_x.y", "x"]
