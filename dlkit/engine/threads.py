"""How many CPU threads and loader workers a job uses: the cores this process may run on, not the machine's.

torch starts one intra-op thread per core it sees, and its OpenMP threads spin while they wait for work.
Beside another busy process (a second job, a notebook, a build) the spinning threads take turns with it
and a small model slows down many times over. So a job sizes its pool from the cores it may actually use
(the affinity mask, the container's CPU quota, an explicit OMP_NUM_THREADS, its share of a distributed
run on this host) and asks OpenMP to sleep while it waits (`quiet_waiting`, before torch loads).

Nothing here imports torch at module level: the CLI calls `quiet_waiting` before anything loads it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from dlkit.errors import UserError

MAX_AUTO_THREADS = 16  # past this a single small-to-medium model gains little and the pool costs more
MAX_AUTO_WORKERS = 4
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2 quota: "max 100000" or "200000 100000"


def available_cores() -> int:
    """Cores this process may run on: its affinity mask, lowered to the container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        quota, period = CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def resolve_threads(setting: int | str) -> int:
    """The `threads` key: `auto` = this process's share of the available cores; an integer is kept."""
    if setting == "auto":
        share = available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        cap = MAX_AUTO_THREADS
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the user's own limit wins
            cap = min(cap, int(os.environ["OMP_NUM_THREADS"]))
        return max(1, min(share, cap))
    try:
        threads = int(setting)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1:
        raise UserError(
            f"threads={setting!r} is not a thread count", "use threads=auto or a whole number >= 1"
        )
    return threads


BUSY_LOAD = 0.5  # 1-minute load average (before this process starts) meaning another process is working


def quiet_waiting(load: float | None = None) -> str | None:
    """On a machine where something else is already working, let OpenMP threads sleep, not spin, while
    they wait: spinning threads then fight the other process for the cores (a small MLP on 2 cores beside
    one busy process: 9.5x slower with spinning, none with sleeping; bench/contention.py). On a quiet
    machine spinning is what makes small ops fast (passive waiting halved that MLP's steps/s alone), so
    the library default stays. Read once when torch loads: call this first. A value the user set
    (OMP_WAIT_POLICY=ACTIVE or PASSIVE) is left alone. Returns the policy now in the environment."""
    if "OMP_WAIT_POLICY" not in os.environ:
        if load is None:
            try:
                load = os.getloadavg()[0]
            except (AttributeError, OSError):  # no load average (Windows): assume shared
                load = BUSY_LOAD
        if load >= BUSY_LOAD:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return os.environ.get("OMP_WAIT_POLICY")


def apply_threads(setting: int | str) -> int:
    """Size torch's thread pools for this job (once, where the job starts); the number of intra-op threads."""
    import torch

    threads = resolve_threads(setting)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if torch.get_num_interop_threads() > threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # settable only before the first inter-op work of the process
            pass
    return threads


def auto_workers(dataset, batch_size: int, threads: int) -> int:
    """`data.num_workers: auto`: loader processes only where they pay for themselves.

    Workers help when every example is read and decoded from disk (a dataset that says so with a true
    `reads_from_disk` attribute) and the epoch is long enough to amortise starting them; data already in
    memory is faster in the main process. Each worker takes a core from the training threads, so
    with two cores or fewer there are none.
    """
    if not getattr(dataset, "reads_from_disk", False) or threads <= 2:
        return 0
    try:
        batches = len(dataset) / max(1, batch_size)
    except TypeError:  # an iterable dataset of unknown length
        batches = math.inf
    if batches < 8:
        return 0
    return min(MAX_AUTO_WORKERS, threads // 2)
