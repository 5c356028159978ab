"""What a manifest records about the machine and the code: versions, git commit, CPU, threads."""
from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, allocator


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the pinnbench checkout, or 'unknown' outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_version() -> str:
    """pinnbench's version and commit: part of every run key, so new code never reuses old results."""
    return f"{__version__}+{git_commit()[:12]}"


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
    }


def environment(device: torch.device) -> dict[str, Any]:
    """Machine, versions, threads and (for CUDA) the GPU name."""
    env = dict(_static_environment())
    env["torch_threads"] = torch.get_num_threads()
    env["malloc_tuned"] = allocator.tuned
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
