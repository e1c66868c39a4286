"""Drawing in a pool of worker processes: ``curves_png_pooled`` and ``scaling_png_pooled``.

Drawing holds the GIL, so threads cannot draw two figures at once; processes can. A default
``diagnose`` draws a ``curves.png`` per run, and a sweep a learning curve per group: both go
through ``_drawn_pooled``, which draws here for the first few figures of a process and in one
shared ``forkserver`` pool after (see ``curves_png_pooled``). The bytes are those the plot
function returns in the calling process. ``MLFLOW_PLATEAU_RENDER_PROCESSES`` sets the pool's size
(0 or 1: no pool).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..curves import Curve
from ..verdict import Diagnosis, ScalingVerdict
from .curves_plot import curves_png
from .scaling_plot import scaling_png

_POOL_LOCK = threading.Lock()
_POOL: dict[str, Any] = {}
_POOL_AFTER = 8   # figures drawn in-process before a pool starts: a batch, not one run, pays for it
_POOL_MAX = 4     # worker processes at most, by default (each holds a matplotlib)


def _render_processes() -> int:
    """Worker processes for ``curves_png_pooled``: ``MLFLOW_PLATEAU_RENDER_PROCESSES`` if set (0 or
    1: draw in the calling thread), else the cores this process may use when there are several
    (at most ``_POOL_MAX``)."""
    env = os.environ.get("MLFLOW_PLATEAU_RENDER_PROCESSES", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return min(cores, _POOL_MAX) if cores > 1 else 0


def curves_png_pooled(diagnosis: Diagnosis, curves: Mapping[str, Curve]) -> bytes:
    """``curves_png``, drawn in a pool of worker processes when there are cores to use (drawing
    holds the GIL: threads cannot draw two figures at once, processes can). The first
    ``_POOL_AFTER`` figures of a process are drawn here (one run's diagnosis never waits for a pool
    to start); then a pool starts (``forkserver``: the workers import matplotlib once, in the
    server) and lives as long as the process; a pool that cannot start or breaks falls back to
    drawing here. The bytes are those ``curves_png`` returns in this process."""
    return _drawn_pooled(curves_png, diagnosis, dict(curves))


def scaling_png_pooled(verdict: ScalingVerdict, *, size_param: str = "train_size",
                       title: str | None = None, metric: str | None = None,
                       mode: str | None = None) -> bytes:
    """``scaling_png`` in the same pool of worker processes as ``curves_png_pooled`` (a sweep
    logging hundreds of groups from several threads draws on every core)."""
    return _drawn_pooled(partial(scaling_png, size_param=size_param, title=title, metric=metric,
                                 mode=mode), verdict)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _start_workers(pool: Any, processes: int) -> None:
    """Start all of ``pool``'s worker processes now, each with a bare ``__main__``.

    A process started by ``forkserver`` (or ``spawn``) first imports the parent's main module, as
    ``__mp_main__``: a caller's script without an ``if __name__ == "__main__":`` guard would run
    again in every worker (train its models again, diagnose its runs again). The workers only
    import this module, so while they start ``sys.modules["__main__"]`` is a bare module that
    gives them nothing to import: overlapping tasks make the executor start every worker here,
    and it reuses them after (a worker that dies breaks the pool, and drawing falls back to the
    calling thread)."""
    import sys
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        started = [pool.submit(_pause, 0.2) for _ in range(processes)]
    finally:
        if main is not None:
            sys.modules["__main__"] = main
    for future in started:
        future.result()


def _drawn_pooled(draw: Callable[..., bytes], *args: Any) -> bytes:
    """``draw(*args)`` in the shared process pool when there are cores to use, here otherwise
    (see ``curves_png_pooled``)."""
    processes = _render_processes()
    if processes < 2:
        return draw(*args)
    with _POOL_LOCK:
        _POOL["calls"] = _POOL.get("calls", 0) + 1
        pool = _POOL.get("pool")
        if pool is None and not _POOL.get("failed") and _POOL["calls"] > _POOL_AFTER:
            try:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["mlflow_plateau.render.pool"])
                pool = ProcessPoolExecutor(processes, mp_context=context)
                _start_workers(pool, processes)
                _POOL["pool"] = pool
            except Exception:  # no pool (no forkserver, no /dev/shm, ...): draw here
                _POOL["failed"] = True
                if pool is not None:  # started, but its workers did not: none left behind
                    pool.shutdown(wait=False, cancel_futures=True)
                pool = None
    if pool is None:
        return draw(*args)
    from concurrent.futures.process import BrokenProcessPool

    try:
        return pool.submit(draw, *args).result()
    except BrokenProcessPool:  # a worker was killed: draw here from now on
        with _POOL_LOCK:
            if _POOL.get("pool") is pool:
                _POOL["failed"] = True
                _POOL.pop("pool")
                pool.shutdown(wait=False, cancel_futures=True)
        return draw(*args)
    except Exception:  # input that does not pickle, or an error that drawing here will raise
        return draw(*args)


def shutdown_pool() -> bool:
    """Stop the shared pool's workers (the next pooled drawing may start a new pool); True when a
    pool was running."""
    with _POOL_LOCK:
        pool = _POOL.pop("pool", None)
    if pool is None:
        return False
    pool.shutdown()
    return True
