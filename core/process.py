"""Leaving a process that used a Temporal client.

temporalio's native core can crash the interpreter during finalization
(sdk-python issue 300: "PyGILState_Release ... finalizing", exit 134/139) after
all the work is done. Every entry point therefore flushes and leaves with its
real status without finalizing the interpreter.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_now(status: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
