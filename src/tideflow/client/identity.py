"""Snapshot identity: one SHA-256 over the canonical content of a submission.

Submitting unchanged code and rules must reuse the stored snapshot, and any change that could
make a job behave differently must not. So the identity is computed over content, never over
bytes whose layout varies (the zip, cloudpickle output, which embeds absolute paths of code):

``sha256(canonical JSON of {"version": 1, "files": [[path, sha256], ...], "plan": ...})``

- ``files``: every packaged file's relative path and content SHA-256, sorted by path
  (timestamps, permissions and excluded files such as caches do not count);
- ``plan``: the compiled plan without payloads, with every ``location`` (``file:line``, which
  depends on the working directory) removed, and each node's processor digest replaced by a
  *processor fingerprint*: its callable's qualified name plus its state (instance attributes,
  closure values, defaults) in canonical form. Values with no canonical form (arrays, frames,
  ...) count through their standard-pickle bytes, or, failing that, their cloudpickle bytes --
  which may differ between runs and then only costs a new snapshot, never a wrong reuse.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import types
from collections.abc import Mapping
from typing import Any

from tideflow.compiler import WorkflowPlan

IDENTITY_VERSION = 1
_MAX_DEPTH = 32
_USER_MODULE_PREFIXES = ("__main__", "tideflow_user_")


def snapshot_identity(
    plan: WorkflowPlan,
    files: tuple[tuple[str, str], ...],
    processors: Mapping[str, object] | None = None,
) -> str:
    """The identity of submitting ``plan`` with a package of ``files``.

    Args:
        plan: The compiled plan.
        files: ``(relative path, content sha256)`` of each packaged file.
        processors: Node name -> the processor object compiled into it. Without it the plan's
            payload digests (pickle bytes) stand in for the processors.
    """
    content = {
        "version": IDENTITY_VERSION,
        "files": sorted([path, digest] for path, digest in files),
        "plan": canonical_plan(plan, processors),
    }
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_plan(
    plan: WorkflowPlan, processors: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """``plan`` as compared for identity: no payloads, no locations, processors fingerprinted."""
    data = plan.to_dict(include_payloads=False)
    for job in data["jobs"]:
        job.pop("location", None)
        for node in job["nodes"]:
            node.pop("location", None)
            if processors is not None and node["processor"] is not None:
                node["processor"] = processor_fingerprint(processors.get(node["name"]))
    for rule in data["rules"]:
        rule.pop("location", None)
    return data


def processor_fingerprint(processor: object) -> str:
    """A SHA-256 of the processor's canonical description (see the module docstring)."""
    return hashlib.sha256(canonical_json(describe(processor)).encode("utf-8")).hexdigest()


def describe(value: object, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-ready, deterministic description of ``value`` and its state."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, bytes):
        return {"bytes": hashlib.sha256(value).hexdigest()}
    if depth > _MAX_DEPTH or id(value) in seen:
        return {"ref": type(value).__qualname__}
    inner = seen | {id(value)}

    def sub(item: object) -> Any:
        return describe(item, depth + 1, inner)

    if isinstance(value, list | tuple):
        return {type(value).__name__: [sub(item) for item in value]}
    if isinstance(value, set | frozenset):
        return {"set": sorted((sub(item) for item in value), key=canonical_json)}
    if isinstance(value, dict):
        pairs = [[sub(k), sub(v)] for k, v in value.items()]
        return {"dict": sorted(pairs, key=lambda pair: canonical_json(pair[0]))}
    if isinstance(value, types.FunctionType):
        closure = [sub(cell.cell_contents) for cell in value.__closure__ or () if _filled(cell)]
        return {
            "function": _qualified(value),
            "defaults": sub(value.__defaults__ or ()),
            "kwdefaults": sub(value.__kwdefaults__ or {}),
            "closure": closure,
        }
    if isinstance(value, types.MethodType):
        return {"method": _qualified(value.__func__), "self": sub(value.__self__)}
    if isinstance(value, type):
        return {"class": _qualified(value)}
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    state = _state(value)
    if state is not None:
        return {"object": _qualified(type(value)), "state": sub(state)}
    return {"object": _qualified(type(value)), "pickle": _pickle_digest(value)}


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises on access
    except ValueError:
        return False
    return True


def _qualified(obj: Any) -> str:
    """``module:qualname`` of a class or function.

    The user's own module counts by qualname only: its module name depends on how the file was
    loaded (``__main__``, or the loader's per-path name).
    """
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    if module.startswith(_USER_MODULE_PREFIXES):
        return str(qualname)
    return f"{module}:{qualname}"


def _state(value: object) -> dict[str, Any] | None:
    """The attributes of a plain Python object (``__dict__`` and ``__slots__``), or ``None``."""
    state: dict[str, Any] = {}
    found = False
    if hasattr(value, "__dict__") and type(value).__module__ != "builtins":
        state.update(vars(value))
        found = True
    for klass in type(value).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot in ("__dict__", "__weakref__") or not isinstance(slot, str):
                continue
            if hasattr(value, slot) and slot not in state:
                state[slot] = getattr(value, slot)
                found = True
    return state if found else None


def _pickle_digest(value: object) -> str:
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception:  # not picklable by reference: fall back to cloudpickle (may vary)
        import cloudpickle

        data = cloudpickle.dumps(value)
    return hashlib.sha256(data).hexdigest()
