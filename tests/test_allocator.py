"""The allocator setting applied at import: a steady-state step does not fault pages by the thousand."""
import resource
import subprocess
import sys

import torch

import pinnbench
from pinnbench import allocator
from pinnbench.core import native
from pinnbench.linalg import thin_svd, truncated_solve
from pinnbench.linesearch import grid_line_search, squared_exponent_grid


def minor_faults_of_line_searches(repeats: int = 5) -> int:
    """Minor page faults per 101-point heat line search on the torch path (the compiled kernel, which serves it
    by default, allocates almost nothing: the torch path is the one whose buffers the allocator must keep)."""
    native._load.cache_clear()
    inst = pinnbench.build("heat", 6865, "paper")
    obj, theta = inst.objective, inst.theta0
    jac, r = obj.jacobian(theta)
    direction = truncated_solve(thin_svd(jac), r, 50)
    etas = squared_exponent_grid()
    for _ in range(2):  # warm: the heap grows to its working size once
        grid_line_search(obj, theta, direction, etas=etas)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        grid_line_search(obj, theta, direction, etas=etas)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // repeats
    native._load.cache_clear()
    return faults


def test_import_tunes_glibc_malloc_and_a_line_search_then_faults_few_pages(monkeypatch):
    monkeypatch.setenv("PINNBENCH_NATIVE", "0")
    assert allocator.tuned  # Linux/glibc here; recorded in every manifest's environment
    torch.set_num_threads(1)
    assert minor_faults_of_line_searches() < 2000  # measured 470 per line search tuned, 28 907 untuned


def test_without_the_setting_the_same_line_search_faults_pages_by_the_thousand():
    code = ("import torch; torch.set_num_threads(1); import sys; sys.path.insert(0, 'tests'); "
            "from test_allocator import minor_faults_of_line_searches as f; print(f())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PINNBENCH_MALLOC_TUNING": "0", "PINNBENCH_NATIVE": "0"})
    assert int(out.stdout.split()[-1]) > 1000  # the control: the test above can fail
