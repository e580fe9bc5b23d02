"""``rappelx workers`` for the fault tests, with short leases so takeovers are quick.

Usage: ``python -m tests.integration._workers_main DSN MODULE [MODULE...]``
"""

from __future__ import annotations

import logging
import sys

import uvloop

from rappelx.runtime._dispatcher import DispatcherConfig
from rappelx.runtime._serve import serve

CONFIG = DispatcherConfig(poll_interval=0.2, lease=2.0, grace=2.0, drain_timeout=5.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    dsn, *modules = sys.argv[1:]
    uvloop.run(serve(modules, processes=1, concurrency=64, dsn=dsn, config=CONFIG))


if __name__ == "__main__":
    main()
