"""The compiled kernels (``one_hidden.c``, ``deep_line.c``, their sigmoid in ``sigmoid.h``): built on first use
with the system C compiler, cached, loaded with ctypes, and used only where they apply; without a compiler
everything runs on the torch path.

For one-hidden-layer nets one kernel computes the fields at θ - η d for every η of a line search, the other the
residual Jacobian's hidden-layer rows, each in one fused pass per (neuron, point) (docs/performance.md, issue
#15): eager torch makes about nine passes through memory, and tens of small kernel launches, for the same work.
For deeper nets one kernel computes the line search's fields, the whole forward pass per (candidate, tile of
points) in L1. They are built
with ``-O3 -march=native`` for the machine they run on; the shared object is cached under ``$PINNBENCH_CACHE``
(default ``~/.cache/pinnbench``), keyed by the source, the flags, the compiler's version and the CPU, so a
changed kernel or another machine never loads a stale build. ``PINNBENCH_NATIVE=0`` turns them off. The
one-hidden-layer kernels run on the calling thread: splitting their candidates over two threads measured no
faster on 2 cores (torch's OpenMP workers still hold the other core). The deep kernel splits its items over
torch's thread count; each item is computed by one thread, so results never depend on the thread count.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCES = tuple(Path(__file__).with_name(name) for name in ("one_hidden.c", "deep_line.c"))
HEADERS = (Path(__file__).with_name("sigmoid.h"),)
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-fopenmp")
MAX_DIM = 16  # the kernel's bound on the input dimension (one_hidden.c)
_POINTER = ctypes.POINTER(ctypes.c_double)


def _cpu_signature() -> str:
    """The CPU's model and feature flags (what -march=native compiles for)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        return platform.processor()


def _cache_dir() -> Path:
    return Path(os.environ.get("PINNBENCH_CACHE") or Path.home() / ".cache" / "pinnbench")


def _build(compiler: str, version: str, flags: tuple[str, ...]) -> Path | str:
    """The cached shared object built with ``flags`` (built now if missing), or the compiler's error."""
    texts = [path.read_text() for path in (*SOURCES, *HEADERS)]
    key = hashlib.sha256("\0".join([*texts, " ".join(flags), version, platform.machine(),
                                    _cpu_signature()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"kernels-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            built = Path(tmp) / target.name
            result = subprocess.run([compiler, *flags, f"-I{HEADERS[0].parent}", "-o", str(built),
                                     *(str(path) for path in SOURCES)], capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                return f"{Path(compiler).name} failed: {result.stderr.strip()[:200]}"
            os.replace(built, target)  # atomic: a concurrent run sees the whole file or none
    return target


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """(the kernels' library, a one-line status): None, with the reason, where it cannot be had. A compiler
    without OpenMP builds them without it (the deep kernel then runs on the calling thread)."""
    if os.environ.get("PINNBENCH_NATIVE") == "0":
        return None, "off (PINNBENCH_NATIVE=0)"
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        return None, "unavailable: no C compiler (cc, gcc) on PATH"
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
        target = _build(compiler, version, FLAGS)
        if isinstance(target, str):
            target = _build(compiler, version, tuple(f for f in FLAGS if f != "-fopenmp"))
        if isinstance(target, str):
            return None, f"unavailable: {target}"
        library = ctypes.CDLL(str(target))
        signatures = {"pinnbench_line_fields": [_POINTER] * 10 + [ctypes.c_int64] * 2,
                      "pinnbench_line_coefficients": [_POINTER] * 11,
                      "pinnbench_one_hidden_jacobian": [_POINTER] * 7 + [ctypes.c_int64] * 3}
        for name, arguments in signatures.items():
            function = getattr(library, name)
            function.restype = None
            function.argtypes = [ctypes.c_int64] * 3 + arguments  # every kernel starts with three sizes
        deep = library.pinnbench_deep_line_fields
        deep.restype = ctypes.c_int64
        deep.argtypes = ([ctypes.c_int64] * 3 + [ctypes.POINTER(ctypes.c_int64)] + [_POINTER] * 4 + [ctypes.c_int64]
                         + [_POINTER] * 4 + [ctypes.c_int64])
    except (OSError, subprocess.SubprocessError, AttributeError) as exc:
        return None, f"unavailable: {type(exc).__name__}: {exc}"[:240]
    return library, f"compiled ({target.name})"


def status() -> str:
    """Whether the compiled kernels are in use, for run manifests and the probe."""
    return _load()[1]


def applies(x: torch.Tensor, dim: int) -> bool:
    """Whether the kernels can serve points x: float64 on the CPU, no autograd, dim <= 16."""
    return (x.device.type == "cpu" and x.dtype == torch.float64 and not torch.is_grad_enabled()
            and dim <= MAX_DIM and _load()[0] is not None)


def _ptr(t: torch.Tensor) -> ctypes._Pointer:
    return ctypes.cast(t.data_ptr(), _POINTER)


def one_hidden_line_fields(y0: torch.Tensor, dy: torch.Tensor, etas: torch.Tensor, au: torch.Tensor,
                           cu: torch.Tensor, ag: torch.Tensor, ah: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u (B, M), grad (B, dim, M), lap (B, M) of a one-hidden-layer net along a line (see one_hidden.c for
    the arguments). Call only where :func:`applies`."""
    library = _load()[0]
    assert library is not None
    n, m = y0.shape
    b, dim = etas.shape[0], ag.shape[1]
    args = [t.contiguous() for t in (y0, dy, etas, au, cu, ag, ah)]
    u, lap = y0.new_empty(b, m), y0.new_empty(b, m)
    grad = y0.new_empty(b, dim, m)
    library.pinnbench_line_fields(n, m, dim, *(_ptr(t) for t in (*args, u, grad, lap)), 0, b)
    return u, grad, lap


def line_coefficients(etas: torch.Tensor, theta_layers: list[tuple[torch.Tensor, torch.Tensor]],
                      direction_layers: list[tuple[torch.Tensor, torch.Tensor]], lap_mask: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """au (B, n), cu (B,), ag (B, dim, n), ah (B, n) of :func:`one_hidden_line_fields` for the candidates
    θ - η d, from the layers of θ and d (``MLP.unflatten``) (see one_hidden.c). Call only where :func:`applies`."""
    library = _load()[0]
    assert library is not None
    (w0, b0), (w, b) = theta_layers
    (dw0, _), (dw, db) = direction_layers
    n, dim = w0.shape
    nb = etas.shape[0]
    au, ah, cu = w0.new_empty(nb, n), w0.new_empty(nb, n), w0.new_empty(nb)
    ag = w0.new_empty(nb, dim, n)
    args = [t.contiguous() for t in (etas, w0, dw0, w, dw, b, db, lap_mask)]
    library.pinnbench_line_coefficients(n, dim, nb, *(_ptr(t) for t in (*args, au, cu, ag, ah)))
    return au, cu, ag, ah


def one_hidden_jacobian(jt: torch.Tensor, y0: torch.Tensor, w0: torch.Tensor, w: torch.Tensor,
                        lap_mask: torch.Tensor, xt: torch.Tensor, ubar: torch.Tensor, rows_w0: int, rows_b0: int,
                        rows_w: int) -> None:
    """Write the W0, b0 and w rows of Jᵀ (P, M), contiguous, from the output cotangents ubar (dim + 2, M) (see
    one_hidden.c). Call only where :func:`applies`."""
    library = _load()[0]
    assert library is not None and jt.is_contiguous()
    n, m = y0.shape
    args = [t.contiguous() for t in (y0, w0, w, lap_mask, xt, ubar)]
    library.pinnbench_one_hidden_jacobian(n, m, w0.shape[1], *(_ptr(t) for t in args), _ptr(jt), rows_w0, rows_b0,
                                          rows_w)


def deep_line_fields(widths: tuple[int, ...], thetas: torch.Tensor, y0: torch.Tensor, dy: torch.Tensor,
                     etas: torch.Tensor, lap_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u (B, M), grad (B, dim, M), lap (B, M) of a net with two or more hidden layers (``widths`` = MLP.layers)
    at the candidates ``thetas`` (B, P) = θ - η d, from the first layer's sigmoid arguments y0, dy (h_1, M) (see
    deep_line.c), on torch's thread count. Call only where :func:`applies`."""
    library = _load()[0]
    assert library is not None
    m = y0.shape[1]
    b, dim = etas.shape[0], widths[0]
    sizes = torch.tensor(widths, dtype=torch.int64)
    thetas, y0, dy, etas, lap_mask = (t.contiguous() for t in (thetas, y0, dy, etas, lap_mask))
    u, lap = y0.new_empty(b, m), y0.new_empty(b, m)
    grad = y0.new_empty(b, dim, m)
    failed = library.pinnbench_deep_line_fields(len(widths) - 1, m, dim,
                                                ctypes.cast(sizes.data_ptr(), ctypes.POINTER(ctypes.c_int64)),
                                                *(_ptr(t) for t in (thetas, y0, dy, etas)), b, _ptr(lap_mask),
                                                _ptr(u), _ptr(grad), _ptr(lap), torch.get_num_threads())
    if failed:
        raise MemoryError("deep_line.c: a worker could not allocate its buffers")
    return u, grad, lap
