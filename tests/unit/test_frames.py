"""Length-prefixed msgpack framing between the pool and its workers."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rappelx.exceptions import RappelxError
from rappelx.runtime import _frames
from rappelx.runtime._frames import (
    MAX_FRAME,
    RESULTS,
    TASKS,
    FrameDecoder,
    FrameError,
    encode_batch,
    encode_frame,
)

MESSAGES = [
    [TASKS, [[1, "app.noop", b"\x92\x90\x80", None], [2, "app.add", b"", 1.5]]],
    [RESULTS, [[7, True, b"\x01", 0.25]]],
    [RESULTS, []],
    {"unicode": "héllo ✓", "bytes": b"\x00\xff", "big": 2**63 - 1, "neg": -(2**63)},
]


@pytest.mark.parametrize("message", MESSAGES)
def test_a_frame_is_a_big_endian_length_then_msgpack(message):
    frame = encode_frame(message)

    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert msgpack.unpackb(frame[4:], raw=False) == message


def test_round_trip_keeps_bytes_and_str_apart():
    [decoded] = FrameDecoder().feed(encode_frame(["text", b"text"]))

    assert decoded == ["text", b"text"]
    assert type(decoded[0]) is str and type(decoded[1]) is bytes


def test_several_frames_in_one_chunk_come_out_in_order():
    stream = b"".join(encode_frame(m) for m in MESSAGES)

    assert FrameDecoder().feed(stream) == MESSAGES


def test_byte_by_byte_feeding_yields_each_message_once_complete():
    decoder = FrameDecoder()
    frame = encode_frame(MESSAGES[0])
    out = []
    for i in range(len(frame)):
        got = decoder.feed(frame[i : i + 1])
        assert got == ([] if i < len(frame) - 1 else [MESSAGES[0]])
        out += got
    assert out == [MESSAGES[0]]
    assert decoder.pending == 0


def test_a_partial_frame_is_kept_until_the_rest_arrives():
    decoder = FrameDecoder()
    first, second = encode_frame(MESSAGES[0]), encode_frame(MESSAGES[1])
    stream = first + second

    assert decoder.feed(stream[: len(first) + 3]) == [MESSAGES[0]]
    assert decoder.pending == 3
    assert decoder.feed(stream[len(first) + 3 :]) == [MESSAGES[1]]
    assert decoder.pending == 0


@given(
    messages=st.lists(
        st.lists(st.one_of(st.integers(-(2**63), 2**64 - 1), st.binary(), st.text())),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=12),
)
def test_any_chunking_of_the_stream_decodes_the_same_messages(messages, cuts):
    stream = b"".join(encode_frame(m) for m in messages)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder()

    out = []
    for start, end in zip(points, points[1:]):
        out += decoder.feed(stream[start:end])

    assert out == messages
    assert decoder.pending == 0


def test_a_length_beyond_the_limit_is_a_corrupt_stream():
    with pytest.raises(FrameError, match="corrupt"):
        FrameDecoder().feed(struct.pack(">I", MAX_FRAME + 1) + b"x")


def test_a_body_that_is_not_msgpack_is_refused():
    bad = b"\xc1"  # 0xc1 is the one byte msgpack never uses
    with pytest.raises(FrameError, match="not valid msgpack"):
        FrameDecoder().feed(struct.pack(">I", len(bad)) + bad)


def test_frame_errors_are_rappelx_errors():
    assert issubclass(FrameError, RappelxError)


def test_a_small_batch_is_one_frame():
    items = [[i, "a", b"p" * 10, None] for i in range(100)]

    frames = encode_batch(TASKS, items)

    assert len(frames) == 1
    assert FrameDecoder().feed(frames[0]) == [[TASKS, items]]


def test_a_large_batch_is_cut_into_frames_that_keep_every_item_in_order(monkeypatch):
    monkeypatch.setattr(_frames, "_BATCH_BYTES", 100)
    items = [[i, True, bytes([i]) * 30, 0.0] for i in range(10)]

    frames = encode_batch(RESULTS, items)

    messages = FrameDecoder().feed(b"".join(frames))
    assert len(frames) == 4  # 3 items of 30 bytes fit under 100
    assert all(kind == RESULTS for kind, _ in messages)
    assert [item for _, batch in messages for item in batch] == items


def test_one_item_larger_than_the_batch_size_still_travels_alone(monkeypatch):
    monkeypatch.setattr(_frames, "_BATCH_BYTES", 10)
    items = [[1, True, b"x" * 50, 0.0], [2, True, b"y", 0.0]]

    frames = encode_batch(RESULTS, items)

    assert [m[1] for m in FrameDecoder().feed(b"".join(frames))] == [items[:1], items[1:]]
