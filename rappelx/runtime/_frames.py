"""Length-prefixed msgpack frames: the wire format between the pool and its workers.

A frame is a 4-byte big-endian body length followed by one msgpack value. The prefix lets
a reader split a byte stream into messages without parsing them, and bounds how much it
buffers. Every message is a two-element list ``[kind, body]``; the kinds are below.

Parent to worker:
    ``[TASKS, [[token, action, payload, timeout], ...]]``
Worker to parent:
    ``[READY, pid]`` once the user modules are imported;
    ``[IMPORT_FAILED, [module, traceback_text]]`` instead, just before exiting;
    ``[RESULTS, [[token, ok, payload, duration], ...]]`` as actions finish.

The parent stops a worker by closing its end of the task pipe; no message is needed.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack

from rappelx.exceptions import RappelxError

TASKS: Final = 1
READY: Final = 2
IMPORT_FAILED: Final = 3
RESULTS: Final = 4

#: Frames above this size are refused: a length that large means a corrupt stream.
MAX_FRAME: Final = 256 * 1024 * 1024
#: The largest single payload (arguments or result) a frame can carry.
MAX_PAYLOAD: Final = MAX_FRAME - 64 * 1024
#: Batches are cut into several frames once their payloads add up to this much.
_BATCH_BYTES: Final = 16 * 1024 * 1024

_PREFIX: Final = struct.Struct(">I")
_HEADER: Final = _PREFIX.size


class FrameError(RappelxError):
    """A byte stream does not hold well-formed frames (corrupt or foreign data)."""


def encode_frame(message: Any) -> bytes:
    """Return ``message`` packed with msgpack behind its 4-byte length prefix.

    Raises:
        FrameError: The packed message exceeds :data:`MAX_FRAME`.
    """
    body: bytes = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME:
        raise FrameError(
            f"a frame of {len(body)} bytes exceeds the limit of {MAX_FRAME}; "
            "send fewer or smaller payloads per batch"
        )
    return _PREFIX.pack(len(body)) + body


def encode_batch(kind: int, items: list[list[Any]]) -> list[bytes]:
    """Pack ``[kind, items]`` as one frame, or several when the payloads are large.

    Each item is a list whose third element is its payload (``bytes``), as in both the
    ``TASKS`` and ``RESULTS`` messages; no payload may exceed :data:`MAX_PAYLOAD`.
    """
    frames: list[bytes] = []
    start = 0
    total = 0
    for index, item in enumerate(items):
        total += len(item[2])
        if total > _BATCH_BYTES and index > start:
            frames.append(encode_frame([kind, items[start:index]]))
            start, total = index, len(item[2])
    frames.append(encode_frame([kind, items[start:] if start else items]))
    return frames


class FrameDecoder:
    """Split a byte stream, fed in arbitrary chunks, back into messages."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Any]:
        """Take the next chunk of the stream; return the messages it completes, in order.

        Raises:
            FrameError: A length prefix is out of range or a body is not valid msgpack.
        """
        if not self._buffer:
            # Common case: the chunk holds whole frames; parse it without copying.
            messages, used = _split(data)
            if used < len(data):
                self._buffer += data[used:]
            return messages
        self._buffer += data
        messages, used = _split(self._buffer)
        del self._buffer[:used]
        return messages


def _split(data: bytes | bytearray) -> tuple[list[Any], int]:
    """Decode every whole frame at the start of ``data``; return them and bytes used."""
    messages: list[Any] = []
    size = len(data)
    position = 0
    with memoryview(data) as view:
        while size - position >= _HEADER:
            (length,) = _PREFIX.unpack_from(data, position)
            if length > MAX_FRAME:
                raise FrameError(
                    f"frame length {length} exceeds the limit of {MAX_FRAME}: the stream "
                    "is corrupt (did something else write to the worker pipe?)"
                )
            end = position + _HEADER + length
            if end > size:
                break
            messages.append(_unpack(view[position + _HEADER : end]))
            position = end
    return messages, position


def _unpack(body: memoryview) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except (ValueError, TypeError) as exc:  # msgpack's own errors derive from ValueError
        raise FrameError(f"a frame body is not valid msgpack: {exc}") from exc
