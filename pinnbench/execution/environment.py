"""What a manifest records about the machine and the code: versions, git commit, CPU, threads."""
from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import allocator
from ..core import native
from .._version import __version__

CHECKOUT = Path(__file__).resolve().parents[2]
"""The folder holding ``pinnbench/`` (a git checkout, or site-packages)."""


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the pinnbench checkout, or 'unknown' outside a git checkout."""
    if not (CHECKOUT / ".git").exists():  # an installed copy, maybe inside someone else's repository
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


CODE_FOLDERS = ("pinnbench", "problems", "optimizers")


@functools.lru_cache(maxsize=1)
def tree_state() -> str:
    """'clean', 'dirty-<hash of the uncommitted changes to the code>' or 'unknown' (not a git checkout).

    The hash covers the diff against HEAD and the untracked files of the package's code folders
    (``pinnbench/``, ``problems/``, ``optimizers/``): an edit to a built-in optimizer changes every run key."""
    root = CHECKOUT
    if not (root / ".git").exists():
        return "unknown"
    git = ["git", "-C", str(root)]
    try:
        diff = subprocess.run([*git, "diff", "HEAD", "--binary", "--", *CODE_FOLDERS], capture_output=True,
                              timeout=30, check=True).stdout
        untracked = subprocess.run([*git, "ls-files", "--others", "--exclude-standard", "-z", "--", *CODE_FOLDERS],
                                   capture_output=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    files = sorted(name for name in untracked.decode().split("\0") if name)
    if not diff and not files:
        return "clean"
    digest = hashlib.sha256(diff)
    for name in files:
        digest.update(name.encode() + b"\0")
        try:
            digest.update((root / name).read_bytes())
        except OSError:
            pass
    return f"dirty-{digest.hexdigest()[:12]}"


def code_version() -> str:
    """pinnbench's version, commit and uncommitted changes: part of every run key, so new code (committed or
    not) never reuses old results."""
    state = tree_state()
    return f"{__version__}+{git_commit()[:12]}" + ("" if state in ("clean", "unknown") else f".{state}")


@functools.lru_cache(maxsize=64)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def source_hash(cls: type, location: str) -> str:
    """A hash of the code of a registered class: its file (a plugin, a built-in), else its source text."""
    path = Path(location)
    try:
        if path.is_file():
            stat = path.stat()
            return _file_hash(str(path), stat.st_mtime_ns, stat.st_size)
        import inspect

        return hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pinnbench": __version__,
        "git_commit": git_commit(),
        "tree": tree_state(),
    }


def environment(device: torch.device) -> dict[str, Any]:
    """Machine, versions, threads and (for CUDA) the GPU name."""
    env = dict(_static_environment())
    env["torch_threads"] = torch.get_num_threads()
    env["malloc_tuned"] = allocator.tuned
    env["native_kernels"] = native.status() if device.type == "cpu" else "not used off the CPU"
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
