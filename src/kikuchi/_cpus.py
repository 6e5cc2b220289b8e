"""The CPUs this process may run on: the default number of workers of every command and kernel."""

from __future__ import annotations

import os

__all__ = ["available_cpus"]


def available_cpus() -> int:
    """CPUs available to this process (its affinity mask: what a batch system or ``taskset`` allows), at least 1.

    ``os.cpu_count()`` counts every CPU of the machine: on a cluster node that
    gives a job 4 of its 64 cores, 64 threads would share 4.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
