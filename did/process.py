"""Ending a process that has used didkit, with its own exit status, every time.

didkit 0.3.3 (Rust: pyo3 and tokio) keeps runtime threads that can still touch
the interpreter while it finalizes: a command that resolved one did:key ended in
SIGSEGV or SIGABRT (``PyGILState_Release``) in about 1 run in 15, after all its
work was done. didkit alone does it too, so the cure is at our end. Stopping our
event loop before finalization (:mod:`did._didkit` does, at exit) makes it rarer
but not rare enough. So command entry points end the way multiprocessing ends
its children: run the ``atexit`` handlers, flush the standard streams, and
``os._exit`` with the status, skipping only the interpreter's own teardown,
which is where the crash happens.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def run_and_exit(main: Callable[[], object]) -> NoReturn:
    """Run ``main`` (a Typer app, an argparse main returning an int) and end the process
    with its status: ``sys.exit(n)`` and a returned int are n, an uncaught exception is
    reported as usual and is 1, Ctrl-C is 130."""
    try:
        returned = main()
        status = returned if isinstance(returned, int) else 0
    except SystemExit as leaving:
        status = _status(leaving.code)
    except KeyboardInterrupt:
        status = 130
    except BaseException as error:  # reported exactly as the interpreter would
        sys.excepthook(type(error), error, error.__traceback__)
        status = 1
    exit_now(status)


def exit_now(status: int) -> NoReturn:
    """Run the atexit handlers, flush, and end the process without finalization."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), as the interpreter would print it
    return 1
