"""The persisted form of an instance's state: plain msgpack around the codec's bytes."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from rappelx import Workflow, workflow
from rappelx._workflow import definition
from rappelx.runtime import _codec
from rappelx.runtime._codec_graph import encode_graph
from rappelx.runtime._engine import Engine
from rappelx.runtime._events import ActionCompleted, CompleteWorkflow, DispatchAction
from rappelx.runtime._specs import RangeSeq
from tests.unit.compile_samples import engine_flows as flows


@workflow
class RangeLoop(Workflow):
    async def run(self, n: int) -> list[int]:
        out = []
        for i in range(1, n, 2):
            out.append(await flows.once(i))
        return out


def started(cls: type, *args: Any) -> tuple[Engine, Any, list[Any]]:
    eng: Engine = definition(cls).engine
    state, commands = eng.start(args, {})
    return eng, state, commands


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        (flows.EngSequence, (5,)),  # per-action retry and backoff policies
        (flows.EngOverride, (0.5,)),  # per-call policies: tuples in the skeleton
        (flows.EngGather, ()),  # a join
        (flows.EngSleep, (60,)),  # a timer
        (RangeLoop, (9,)),
    ],
    ids=lambda v: getattr(v, "__name__", repr(v)),
)
def test_state_bytes_are_the_plain_msgpack_of_their_content(cls: type, args: Any) -> None:
    eng, state, _ = started(cls, *args)
    data = eng.dumps(state)
    # What the format promises: a plain msgpack array [skeleton, codec bytes], packed
    # exactly as a non-strict packer packs the decoded content again.
    assert data == msgpack.packb(msgpack.unpackb(data), use_bin_type=True)
    assert eng.dumps(eng.loads(data)) == data


def test_a_loop_over_a_range_survives_a_restart_at_every_step() -> None:
    eng, state, commands = started(RangeLoop, 9)
    while True:
        state = eng.loads(eng.dumps(state))
        (command,) = commands
        if isinstance(command, CompleteWorkflow):
            assert command.value == [1, 3, 5, 7]
            return
        assert isinstance(command, DispatchAction)
        state, commands = eng.step(state, ActionCompleted(command.action_id, command.args[0]))


@pytest.mark.parametrize("value", [RangeSeq(0, 10, 1), RangeSeq(-5, 2**70, 3)], ids=repr)
def test_a_range_is_written_as_any_dataclass_and_read_back(value: RangeSeq) -> None:
    for holder in (value, [value], {"seq": value, "n": 1}):
        assert _codec.dumps(holder) == encode_graph(holder)
        assert _codec.loads(_codec.dumps(holder)) == holder


def test_the_loop_a_range_drives_is_the_same_after_decoding() -> None:
    decoded: Any = _codec.loads(_codec.dumps(RangeSeq(1, 9, 2)))
    assert type(decoded) is RangeSeq
    assert [decoded[i] for i in range(len(decoded))] == [1, 3, 5, 7]
