"""The rappelx codec: Python values to bytes and back, with msgpack and never pickle.

Every action's arguments and result and every workflow's variable scope go through
:func:`dumps` and :func:`loads`, so both are built around msgpack's C packer and
unpacker, with Python code only for what msgpack cannot carry natively.

What is carried, with its type kept exactly: None, bool, int (any size), float, str,
bytes, bytearray, list, tuple, dict (any encodable keys, order kept), set, frozenset,
datetime / date / time (``datetime.timezone`` and ``zoneinfo.ZoneInfo`` time zones),
timedelta, UUID, Decimal, Enum members, dataclass instances, pydantic v2 models and
exceptions (class, args, attributes, cause and context; not the traceback). Within one
value, shared mutable objects stay shared and cycles work.

How it is laid out:

- ``_codec_classes.py``: ext codes (the format); which classes are accepted; finding a
  class by name without importing anything.
- ``_codec_tree.py``: the fast path, for values that hold no object twice (most of
  them): one look at each object, then msgpack's C packer with a ``default`` hook.
- ``_codec_scan.py`` and ``_codec_graph.py``: the rest. The scan finds the shared
  objects; the graph encoder writes them once and refers back to them, and is also what
  reports encode errors with a path. ``_codec_encode.py`` holds the per-type encoders
  all paths share, so they write the same bytes for the same unshared value.
- ``_codec_decode.py`` (where :func:`loads` is) and ``_codec_decode_objects.py``: the
  unpacker hooks that rebuild values without running user code.
"""

from __future__ import annotations

from rappelx.exceptions import CodecError
from rappelx.runtime._codec_classes import EncodeFailure
from rappelx.runtime._codec_decode import loads
from rappelx.runtime._codec_encode import pack
from rappelx.runtime._codec_graph import GraphEncoder
from rappelx.runtime._codec_scan import find_shared
from rappelx.runtime._codec_tree import encode_tree

# loads is defined next to the decoder's hooks: one call less on every decode.
__all__ = ["dumps", "loads"]


def dumps(value: object) -> bytes:
    """Encode ``value`` to bytes.

    Args:
        value: Any supported value (see the module docstring), nested up to about 1,000
            levels deep (about 450 when it holds shared objects).

    Returns:
        The msgpack-based encoding; :func:`loads` turns it back into an equal value of
        the same types, with shared objects shared.

    Raises:
        CodecError: Something in ``value`` is not supported; ``.path`` says where, like
            ``value['user'].conn``.
    """
    try:
        data = encode_tree(value)
    except Exception:  # cannot be encoded: the graph encoder below says why, with a path
        data = None
    if data is not None:
        return data
    shared = find_shared(value)
    if shared is None:
        try:
            return pack(value)
        except Exception:  # the graph encoder below reports what is wrong, with a path
            shared = set()
    try:
        return GraphEncoder(shared).encode(value)
    except EncodeFailure as failure:
        path = "value" + "".join(reversed(failure.labels))
        raise CodecError(f"cannot encode {path}: {failure.reason}", path=path) from None
    except RecursionError:
        raise CodecError(_TOO_DEEP, path="value") from None
    except Exception as exc:
        if "recursion limit" in str(exc):  # msgpack's own depth limit, as a ValueError
            raise CodecError(_TOO_DEEP, path="value") from None
        raise CodecError(f"cannot encode value: {type(exc).__name__}: {exc}", path="value") from exc


_TOO_DEEP = "cannot encode value: it is nested too deeply (over a few hundred levels); flatten it"
