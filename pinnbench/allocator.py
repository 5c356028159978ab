"""Keep glibc's allocator from giving memory back to the system at every step.

A step allocates and frees the same large blocks again and again (the Jacobian, the line search's batched
Taylor passes). With glibc's default thresholds, blocks above the dynamic mmap threshold are mapped and unmapped
each time and the heap top is trimmed after each free: inside a run one 101-point line search then costs
thousands of minor page faults and ~3x its warm time (issue #15). Raising both thresholds to
``THRESHOLD_BYTES`` at import keeps those blocks in the heap for reuse; results are bit-identical. It is what
``GLIBC_TUNABLES=glibc.malloc.trim_threshold=...:glibc.malloc.mmap_threshold=...`` does, without a variable
users must know. Skipped off glibc, when the user set malloc tunables, or with ``PINNBENCH_MALLOC_TUNING=0``.
"""
from __future__ import annotations

import ctypes
import os
import sys

THRESHOLD_BYTES = 256 << 20
"""Trim and mmap thresholds: blocks up to 256 MiB stay in the heap; the heap keeps up to 256 MiB unused."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)

tuned = False
"""Whether this process runs with the raised thresholds (recorded in every run's manifest)."""


def tune_allocator() -> bool:
    """Raise glibc's trim and mmap thresholds once per process; returns whether they are in force."""
    global tuned
    if tuned:
        return True
    if (not sys.platform.startswith("linux") or os.environ.get("PINNBENCH_MALLOC_TUNING") == "0"
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        tuned = bool(libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        tuned = False
    return tuned
