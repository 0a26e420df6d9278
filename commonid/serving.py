"""`commonid serve --workers N`: N uvicorn processes, each on its own listening socket.

uvicorn's own multi-worker mode has every worker accept from one shared
socket. Keep-alive connections then stay with whichever worker won the accept
race, and at a burst of new connections that is mostly one of them: the
benchmark saw 14 of 16 provider connections on one worker, which ran at full
load while the other idled. Here every worker binds the port itself with
SO_REUSEPORT, and the kernel spreads new connections over the workers' sockets
by a hash of the connection's addresses, whatever each worker is doing.

The supervisor restarts a worker that dies, stops when one cannot start, and
passes SIGTERM/SIGINT on for a graceful shutdown. A worker whose supervisor dies
(`kill -9`, OOM killer) shuts down too: the kernel sends it SIGTERM
(PR_SET_PDEATHSIG), so a restarted `serve` never binds beside an orphaned generation.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
from multiprocessing.process import BaseProcess
from types import FrameType

from commonid.metrics import prepare_multiprocess
from commonid.settings import Settings

APP = "commonid.api.asgi:app_factory"
# uvicorn exits with 3 when the application cannot start (as run_worker does when the
# app cannot be built): restarting will not help.
STARTUP_FAILURE_EXIT = 3
# More restarts than this within the window is a crash loop: stop instead.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0


def listening_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket on host:port that other workers may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    return sock


# prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGTERM (a graceful uvicorn shutdown) when the supervisor dies.

    Linux only; elsewhere an orphaned worker is the supervisor's process manager's to stop.
    The parent may already have died between our fork and this call, in which case the
    signal would never come: exit now instead.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        sys.exit(0)


def run_worker(host: str, port: int, parent_pid: int) -> None:
    """One worker process: the app on its own socket (the process's entry point)."""
    import uvicorn

    exit_with_parent(parent_pid)

    config = uvicorn.Config(APP, factory=True, log_level="info", access_log=False)
    try:
        config.load()  # builds the app (settings, database, keys): may fail for good
    except Exception:
        traceback.print_exc()
        sys.exit(STARTUP_FAILURE_EXIT)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def prepare_shared_state(settings: Settings) -> None:
    """Before the workers start: what they share on this host, emptied of a previous
    run's values and named in the environment they inherit. /metrics adds up every
    worker's values; a caller has one rate-limit bucket, not one per worker
    (commonid.api.limits)."""
    prepare_multiprocess(settings.data_dir / "metrics")
    shared_limits = settings.rate_limit_dir or settings.data_dir / "rate-limits"
    for stale in shared_limits.glob("*.buckets"):
        stale.unlink()
    os.environ["COMMONID_RATE_LIMIT_DIR"] = str(shared_limits)


def serve_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """Run ``workers`` worker processes until SIGTERM/SIGINT; returns the exit status."""
    # Fail in the foreground on a port that is taken (bound only: a socket that does not
    # listen takes no connections from the workers' group).
    try:
        listening_socket(host, port, listen=False).close()
    except OSError as error:
        print(f"commonid serve: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return 1
    prepare_shared_state(settings)
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as uvicorn's
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(host, port, os.getpid()), daemon=False)
        process.start()
        return process

    running = [start() for _ in range(workers)]

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        # SIGTERM whatever came in: at Ctrl-C the workers got SIGINT from the terminal
        # already, and uvicorn takes a second SIGINT as "exit now", cutting shutdown short.
        for process in running:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    restarts: list[float] = []
    try:
        while not stopping:
            for slot, process in enumerate(running):
                if process.is_alive() or stopping:
                    continue
                code = process.exitcode
                now = time.monotonic()
                restarts = [at for at in restarts if now - at < RESTART_WINDOW_SECONDS]
                if code == STARTUP_FAILURE_EXIT or len(restarts) >= MAX_RESTARTS:
                    why = "failed to start" if code == STARTUP_FAILURE_EXIT else "keeps exiting"
                    print(
                        f"commonid serve: a worker {why} (exit {code}); stopping", file=sys.stderr
                    )
                    status = 1
                    stop(signal.SIGTERM, None)
                    break
                print(
                    f"commonid serve: worker {process.pid} exited ({code}); starting another",
                    file=sys.stderr,
                )
                restarts.append(now)
                running[slot] = start()
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in running:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    return status
