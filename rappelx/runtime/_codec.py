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
- ``_codec_tree.py``: :func:`dumps`, and its fast path for values that hold no object
  twice (most of them): one look at each object, then msgpack's C packer with a
  ``default`` hook.
- ``_codec_graph.py`` and ``_codec_scan.py``: the rest. The scan finds the shared
  objects; the graph encoder writes them once and refers back to them, and is also what
  reports encode errors with a path. ``_codec_encode.py`` holds the per-type encoders
  all paths share, so they write the same bytes for the same unshared value.
- ``_codec_decode.py`` (:func:`loads`) and ``_codec_decode_objects.py``: the unpacker
  hooks that rebuild values without running user code.
"""

from __future__ import annotations

from rappelx.runtime._codec_decode import loads
from rappelx.runtime._codec_tree import dumps

# Each is defined next to its hot path: one call less on every value.
__all__ = ["dumps", "loads"]
