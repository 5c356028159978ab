"""OpenBLAS (the LAPACK behind scipy and numpy) on torch's thread count."""
from __future__ import annotations

import ctypes
from pathlib import Path


def set_openblas_threads(n: int) -> int:
    """Give every OpenBLAS loaded in this process (scipy's and numpy's LAPACK) ``n`` threads, as
    ``torch.set_num_threads`` does for torch's BLAS (left alone, OpenBLAS spins one thread per core and slows
    ~100x on a busy machine). Returns the number of libraries set; Linux only (0 elsewhere)."""
    import scipy.linalg  # noqa: F401 - loads scipy's OpenBLAS
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return 0
    paths = {line.split()[-1] for line in maps.splitlines()
             if line.split()[-1].startswith("/") and "openblas" in Path(line.split()[-1]).name.lower()}
    count = 0
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                       "openblas_set_num_threads64_", "openblas_set_num_threads"):
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(ctypes.c_int(n))
                count += 1
                break
    return count
