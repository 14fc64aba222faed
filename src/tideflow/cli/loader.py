"""Load a user's workflow file and find the workflows it declares.

The file runs as a module of its own (its directory first on ``sys.path``, so sibling modules
import as they would under ``python FILE``). Its module name exists only in this process, so its
classes are registered with cloudpickle *by value*: a job process elsewhere can unpickle the
processors without importing the file under the same name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from tideflow.errors import InvalidArgumentError, UserCodeError
from tideflow.sdk.builder import Workflow, collect_workflows


def load_workflows(path: str | Path) -> list[Workflow]:
    """Run ``path`` and return every workflow it declares, in declaration order.

    Raises:
        InvalidArgumentError: The file does not exist or declares no workflow.
        UserCodeError: The file raised while running (the user's exception is chained), or
            called ``sys.exit`` (a ``SystemExit`` is never let through: it would end the
            process with the file's exit code and no message).
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise InvalidArgumentError(f"workflow file {str(path)!r} does not exist", field="file")
    module_name = "tideflow_user_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"cannot load {str(path)!r} as Python source", field="file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Only while the file runs: its sibling imports resolve, and nothing leaks into the
    # process's import path afterwards (a server loads many files).
    sys.path.insert(0, str(file.parent))
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    with collect_workflows() as found:
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # the user's file: keep its traceback, name it
            import traceback

            del sys.modules[module_name]
            cloudpickle.unregister_pickle_by_value(module)
            raise UserCodeError(_failure(path, exc), user_traceback=traceback.format_exc()) from exc
        finally:
            sys.path.remove(str(file.parent))
    declared = list(found)
    for value in vars(module).values():
        if isinstance(value, Workflow) and value not in declared:
            declared.append(value)
    if not declared:
        raise InvalidArgumentError(
            f"{str(path)!r} declares no workflow: use `with tide.workflow(name) as wf:`",
            field="file",
        )
    return declared


def _failure(path: str | Path, exc: BaseException) -> str:
    """What went wrong running ``path``: the exception, or the exit it asked for."""
    if isinstance(exc, SystemExit):
        # ``sys.exit`` in a workflow file would otherwise end the CLI (or the server that
        # loads it) with the file's code and no word about why.
        code = exc.code
        said = "" if code is None or isinstance(code, int) else f" ({code})"
        status = 1 if said else int(code or 0)
        return (
            f"running {str(path)!r} called sys.exit (exit code {status}{said}): a workflow "
            "file is imported to find its workflows and must not exit; put a script's entry "
            'point under `if __name__ == "__main__":`'
        )
    return f"running {str(path)!r} raised {type(exc).__name__}: {exc}"


def select_workflow(workflows: list[Workflow], name: str | None) -> list[Workflow]:
    """All workflows, or just the one called ``name``.

    Raises:
        InvalidArgumentError: No workflow has that name.
    """
    if name is None:
        return workflows
    chosen = [wf for wf in workflows if wf.name == name]
    if not chosen:
        known = ", ".join(wf.name for wf in workflows)
        raise InvalidArgumentError(
            f"no workflow named {name!r} in the file (found: {known})", field="workflow"
        )
    return chosen
