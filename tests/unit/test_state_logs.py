"""Log lists in the persisted state: what a step writes, and reading it back."""

from __future__ import annotations

from typing import Any

import pytest

from rappelx import Workflow, action, workflow
from rappelx._workflow import definition
from rappelx.exceptions import StateError
from rappelx.runtime._engine import Engine
from rappelx.runtime._events import ActionCompleted, CompleteWorkflow, DispatchAction
from rappelx.runtime._state import Chunk, encode_state, needs_logs


@action
async def fetch(i: int) -> dict[str, int]:
    return {"i": i}


@workflow
class SlCollect(Workflow):
    async def run(self, n: int) -> list[dict[str, int]]:
        out = []
        for i in range(n):
            out.append(await fetch(i))
        return out


@workflow
class SlKept(Workflow):
    """Appends from a local: ints are logged, a dict (which may change later) is not."""

    async def run(self, n: int, dict_at: int) -> list[object]:
        out: list[object] = []
        for i in range(n):
            r = await fetch(i)
            item: object = r if i == dict_at else r["i"]
            out.append(item)
        return out


@workflow
class SlNoLists(Workflow):
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += (await fetch(i))["i"]
        return total


def step(eng: Engine, state: Any, commands: list[Any]) -> tuple[Any, list[Any]]:
    """Complete the one dispatched action the way the worker would."""
    (command,) = commands
    assert isinstance(command, DispatchAction)
    return eng.step(state, ActionCompleted(command.action_id, {"i": command.args[0]}))


def test_each_write_carries_only_the_items_appended_since_the_last() -> None:
    eng: Engine = definition(SlCollect).engine
    state, commands = eng.start((50,), {})
    chunks: list[Chunk] = []
    sizes = []
    for i in range(49):  # (the 50th completes the workflow)
        state, commands = step(eng, state, commands)
        before = len(chunks)
        data = eng.dumps_logged(state, chunks)
        sizes.append(len(data))
        (log_id, start, items) = chunks[before]
        assert len(chunks) == before + 1 and (log_id, start) == (0, i)
        assert needs_logs(data)
        assert len(items) < 20  # one small dict
    # The state no longer holds the list: it does not grow with it.
    assert max(sizes[10:]) - min(sizes[10:]) <= 2, sizes
    # Written whole, the same state holds the 49 dicts.
    whole = eng.dumps(eng.loads(data, chunks))
    assert len(whole) >= max(sizes) + 49 * len(b"\x81\xa1i\x00")  # 4 bytes a dict
    _, commands = step(eng, state, commands)
    assert commands == [CompleteWorkflow([{"i": i} for i in range(50)])]


def test_a_state_read_back_with_its_chunks_goes_on_as_the_original() -> None:
    eng: Engine = definition(SlCollect).engine
    state, commands = eng.start((6,), {})
    chunks: list[Chunk] = []
    for _ in range(3):
        state, commands = step(eng, state, commands)
        data = eng.dumps_logged(state, chunks)
    restored = eng.loads(data, chunks)
    for _ in range(3):
        restored, commands = step(eng, restored, commands)
        eng.dumps_logged(restored, chunks)
    (done,) = commands
    assert isinstance(done, CompleteWorkflow)
    assert done.value == [{"i": i} for i in range(6)]


def test_a_missing_chunk_is_a_clear_error() -> None:
    eng: Engine = definition(SlCollect).engine
    state, commands = eng.start((5,), {})
    chunks: list[Chunk] = []
    for _ in range(3):
        state, commands = step(eng, state, commands)
        data = eng.dumps_logged(state, chunks)
    with pytest.raises(StateError, match=r"3 items of its log 0.*holds 1.*rappelx_state_logs"):
        eng.loads(data, chunks[:1])


def test_an_item_that_may_change_sends_the_list_back_into_the_state() -> None:
    eng: Engine = definition(SlKept).engine
    assert eng.log_lists == {"run": {"out": False}}
    state, commands = eng.start((8, 3), {})
    chunks: list[Chunk] = []
    logged_at = []
    for i in range(7):  # (the 8th completes the workflow)
        state, commands = step(eng, state, commands)
        before = len(chunks)
        data = eng.dumps_logged(state, chunks)
        logged_at.append(len(chunks) - before)
        restored = eng.loads(data, chunks).fibers[0].frames[0].scope["out"]
        assert restored == [{"i": k} if k == 3 else k for k in range(i + 1)]
    # Ints 0-2 were logged one by one; from the dict on, the list is in the state.
    assert logged_at == [1, 1, 1, 0, 0, 0, 0]


def test_a_state_without_log_lists_is_written_as_before() -> None:
    eng: Engine = definition(SlNoLists).engine
    state, commands = eng.start((4,), {})
    state, commands = step(eng, state, commands)
    chunks: list[Chunk] = []
    data = eng.dumps_logged(state, chunks)
    assert chunks == [] and not needs_logs(data)
    assert data == encode_state(state, eng.self_names)
    assert data[2] == 2  # format 2, which rappelx versions before logs read
