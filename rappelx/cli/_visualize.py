"""``rappelx visualize``: write the drawing as SVG/PNG/PDF, or as DOT text."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import graphviz

from rappelx.cli._errors import CliError

__all__ = ["DOT_SUFFIXES", "RENDER_SUFFIXES", "Written", "fallback_notice", "write_drawing"]

DOT_SUFFIXES = frozenset({".dot", ".gv"})
RENDER_SUFFIXES = frozenset({".svg", ".png", ".pdf"})


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`write_drawing` produced.

    Attributes:
        path: The file written.
        fallback: The requested format needed the ``dot`` binary, which is missing, so
            DOT text was written to ``path`` instead of the requested file.
    """

    path: Path
    fallback: bool = False


def write_drawing(dot: graphviz.Digraph, output: Path) -> Written:
    """Write ``dot`` to ``output`` in the format its suffix names.

    ``.dot``/``.gv`` get DOT text; ``.svg``/``.png``/``.pdf`` are rendered by graphviz's
    ``dot`` binary. Without that binary, DOT text goes to ``output`` with a ``.dot``
    suffix and the result says so.

    Raises:
        CliError: The suffix names no supported format, or the file cannot be written.
    """
    suffix = output.suffix.lower()
    if suffix not in DOT_SUFFIXES | RENDER_SUFFIXES:
        supported = ", ".join(sorted(DOT_SUFFIXES | RENDER_SUFFIXES))
        raise CliError(f"cannot tell the format of {output}: use one of {supported}")
    if suffix in DOT_SUFFIXES:
        return Written(_write(output, dot.source.encode()))
    if shutil.which("dot") is None:
        return Written(_write(output.with_suffix(".dot"), dot.source.encode()), fallback=True)
    try:
        data = dot.pipe(format=suffix[1:])
    except graphviz.ExecutableNotFound:
        return Written(_write(output.with_suffix(".dot"), dot.source.encode()), fallback=True)
    except graphviz.CalledProcessError as exc:
        raise CliError(f"graphviz 'dot' failed to render {output}") from exc
    return Written(_write(output, data))


def fallback_notice(requested: Path, written: Path) -> str:
    """What to tell the user when DOT text was written instead of ``requested``."""
    fmt = requested.suffix[1:].lower()
    return (
        f"warning: graphviz's 'dot' program is not installed, so {requested} could not be "
        f"rendered; wrote DOT text to {written} instead.\n"
        f"Install graphviz (apt-get install graphviz, brew install graphviz) and run the "
        f"command again, or render it with: dot -T{fmt} {written} -o {requested}"
    )


def _write(path: Path, data: bytes) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}") from exc
    return path
