"""What a node is called in drawings: the source the user wrote, not rappelx's names.

Lowering rewrites code: awaits are hoisted into temporaries (``_rx_t1``), loops iterate
over ``_rx_seq``/``_rx_i`` counters, comprehension variables are renamed, a bare
``raise`` in a handler names the exception it re-raises. Labels show what those names
stand for instead, and rappelx's own bookkeeping nodes are labelled in words.
"""

from __future__ import annotations

import ast
import re

__all__ = ["label_of", "shorten", "unhoisted"]

#: Longest label kept (longer ones end in "...").
MAX_LABEL = 60


def label_of(node: ast.AST) -> str:
    shown = getattr(node, "rx_label", None)  # set on statements rappelx writes itself
    if shown is not None:
        return str(shown)
    text = ast.unparse(node).splitlines()[0] if node else ""
    return shorten(text)


def shorten(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 3] + "..."


_TEMPORARY = re.compile(r"\b_rx_\w+")
# A temporary being set: the label shows the value computed.
_DEFINITION = re.compile(r"^_rx_[tc]\d+ = ")
# An item appended to the list a comprehension that awaits builds.
_COLLECT = re.compile(r"^_rx_c\d+\.append\((.*)\)$")
# A bare ``raise`` in a handler, as _rewrite_bare_raise spelled it out.
_RERAISE = re.compile(r"\braise (?:_rx_e\d+|_rx_reraise\(_rx_f\d+, (?:_rx_e\d+|None)\))")
# Expressions that read the same in any operand position; others get parentheses.
_ATOMS = (ast.Await, ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Constant,
          ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp)  # fmt: skip


def unhoisted(label: str, shown: dict[str, ast.expr]) -> str:
    """``label`` with the temporaries hoisting made shown as the source they stand for."""

    def source(match: re.Match[str]) -> str:
        expr = shown.get(match.group())
        if expr is None:
            return match.group()
        text = _TEMPORARY.sub(source, ast.unparse(expr))
        return text if isinstance(expr, _ATOMS) else f"({text})"

    if "_rx_" not in label:
        return label
    label = _COLLECT.sub(r"list item: \1", _DEFINITION.sub("", _RERAISE.sub("raise", label)))
    return shorten(_TEMPORARY.sub(source, label))
