"""Children of `serve` die with it, even when it is killed with SIGKILL (no handler of its own can run then).

Two layers: on Linux the kernel sends SIGTERM to a child whose parent dies (`PR_SET_PDEATHSIG`, see
https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html), and the job worker also watches its
parent pid, which covers other systems and a parent that died before the child asked the kernel.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

from bot.settings import process_env

PARENT_ENV = "ECR_CACHE_BOT_PARENT_PID"  # set by `serve` for the processes it supervises
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` making the child receive `signum` when `parent` dies (None off Linux).

    The signal follows the death of the parent *thread* that forked the child, so `serve` must spawn from its
    main thread. It survives `exec` (not for set-user-ID programs), so it reaches gunicorn's master."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: between fork and exec, do little
    prctl = libc.prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect: nobody will signal us
            os.kill(os.getpid(), signum)

    return preexec


def watch_parent(
    parent: int, signum: int = signal.SIGTERM, interval: float = 1.0, stop: threading.Event | None = None
) -> threading.Thread:
    """A daemon thread sending `signum` to this process once `parent` is no longer its parent."""
    stop = stop or threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            if os.getppid() != parent:
                os.kill(os.getpid(), signum)
                return

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def parent_from_env() -> int | None:
    """The supervising `serve`'s pid when this process was started by one."""
    value = process_env().get(PARENT_ENV, "")
    return int(value) if value.isdigit() else None
