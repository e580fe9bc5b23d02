"""Pin the public names of ``rappelx`` (DESIGN.md section 1): code outside this
repository is written against them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rappelx

PUBLIC = [
    "ActionTimeout",
    "BackoffPolicy",
    "Client",
    "CompileError",
    "RetryPolicy",
    "Workflow",
    "WorkflowFailed",
    "WorkflowHandle",
    "action",
    "workflow",
]
ROOT = Path(__file__).parents[2]


def test_all_is_pinned_and_sorted() -> None:
    assert rappelx.__all__ == PUBLIC
    assert sorted(rappelx.__all__) == rappelx.__all__


@pytest.mark.parametrize("name", PUBLIC)
def test_every_name_resolves(name: str) -> None:
    value = getattr(rappelx, name)
    assert value is not None
    if name[0].isupper():
        assert isinstance(value, type)
        assert value.__name__ == name
    else:
        assert callable(value)


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from rappelx import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == PUBLIC


def test_error_classes_have_their_documented_bases() -> None:
    from rappelx.exceptions import RappelxError

    assert issubclass(rappelx.ActionTimeout, TimeoutError)
    assert issubclass(rappelx.CompileError, RappelxError)
    assert issubclass(rappelx.WorkflowFailed, RappelxError)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rappelx.Nope  # noqa: B018 - the lookup is the test


def test_testing_helpers_live_in_rappelx_testing() -> None:
    from rappelx import testing

    assert callable(testing.run_inline)
    assert "run_inline" not in rappelx.__all__


def _fresh_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    return result.stdout.strip()


def test_client_and_handle_resolve_lazily() -> None:
    """``import rappelx`` does not import the client (and asyncpg) until it is asked for."""
    code = (
        "import sys, rappelx\n"
        "before = ['rappelx.runtime._client' in sys.modules, 'asyncpg' in sys.modules]\n"
        "client, handle = rappelx.Client, rappelx.WorkflowHandle\n"
        "after = 'rappelx.runtime._client' in sys.modules\n"
        "print(before, after, client.__module__, handle.__module__)\n"
    )
    assert _fresh_python(code) == (
        "[False, False] True rappelx.runtime._client rappelx.runtime._client"
    )
