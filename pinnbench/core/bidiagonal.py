"""The SVD of a small square matrix with its singular factors kept implicit: LAPACK's gebrd + bdsdc.

LAPACK's gesdd on an n x n matrix bidiagonalizes it (gebrd: R = Q_b B P_bᵀ), takes the SVD of the bidiagonal B
by divide and conquer (bdsdc: B = U_B S V_Bᵀ) and then forms U = Q_b U_B and V = P_b V_B, two n³ products.
A natural-gradient step only ever applies U and V to one or a few vectors, so :class:`BidiagonalSVD` stops
before those products and applies the reflectors of Q_b and P_b to the vectors instead (ormbr, O(n²) each):
the same algorithm and the same singular values as gesdd, 1.3-1.6x faster on the paper's R factors
(docs/performance.md). scipy wraps none of gebrd, bdsdc and ormbr in ``scipy.linalg.lapack``; they are called
through the function pointers ``scipy.linalg.cython_lapack`` exports (scipy's OpenBLAS build of LAPACK).
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable

import numpy as np

_Pointer = ctypes.c_void_p


@functools.cache
def _routine(name: str) -> Callable[..., None]:
    """The LAPACK routine ``name`` from scipy.linalg.cython_lapack, every argument passed by pointer."""
    import scipy.linalg.cython_lapack as cython_lapack
    capsule = cython_lapack.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    n_args = {"dgebrd": 11, "dbdsdc": 14, "dormbr": 14}[name]
    return ctypes.CFUNCTYPE(None, *[_Pointer] * n_args)(get_pointer(capsule, get_name(capsule)))


def available() -> bool:
    """Whether scipy exports the three routines (every scipy pinnbench accepts does)."""
    try:
        for name in ("dgebrd", "dbdsdc", "dormbr"):
            _routine(name)
    except (ImportError, KeyError, AttributeError, ValueError):
        return False
    return True


def _int(value: int) -> ctypes.c_int:
    return ctypes.c_int(value)


def _char(value: str) -> ctypes.c_char_p:
    return ctypes.c_char_p(value.encode())


def _data(array: np.ndarray) -> _Pointer:
    """The address of ``array``'s data: the caller keeps ``array`` alive through the call."""
    return _Pointer(array.ctypes.data)


class LapackError(RuntimeError):
    """A LAPACK routine returned info != 0."""


def _call(name: str, *args: object) -> None:
    info = ctypes.c_int(0)
    _routine(name)(*[ctypes.byref(a) if isinstance(a, ctypes.c_int) else a for a in args], ctypes.byref(info))
    if info.value != 0:
        raise LapackError(f"LAPACK {name} returned info = {info.value}")


@functools.cache
def _gebrd_workspace(n: int) -> int:
    """gebrd's optimal lwork for an n x n matrix (LAPACK's workspace query)."""
    query = np.empty(1)
    _call("dgebrd", _int(n), _int(n), None, _int(n), None, None, None, None, _data(query), _int(-1))
    return max(int(query[0]), 1)


class BidiagonalSVD:
    """R = U diag(S) Vᵀ of a square float64 matrix R (n, n), S descending, U and V applied, not formed.

    ``r`` must be C-contiguous; it is overwritten with the reflectors. Its memory read column-major is Rᵀ, so
    LAPACK factors A = Rᵀ = Q_b B P_bᵀ, B = U_B S V_Bᵀ with no copy, and R = (P_b V_B) S (Q_b U_B)ᵀ:
    U = P_b V_B and V = Q_b U_B.
    """

    def __init__(self, r: np.ndarray) -> None:
        n = r.shape[0]
        if r.shape != (n, n) or r.dtype != np.float64 or not r.flags.c_contiguous:
            raise ValueError(f"BidiagonalSVD needs a C-contiguous square float64 array, got {r.shape} {r.dtype}")
        self.n, self._a = n, r
        self.S, off_diagonal = np.empty(n), np.empty(max(n - 1, 1))
        self._tau_q, self._tau_p = np.empty(max(n, 1)), np.empty(max(n, 1))
        lwork = _gebrd_workspace(n)
        work = np.empty(max(lwork, 3 * n * n + 4 * n, 1))
        _call("dgebrd", _int(n), _int(n), _data(r), _int(max(n, 1)), _data(self.S), _data(off_diagonal),
              _data(self._tau_q), _data(self._tau_p), _data(work), _int(lwork))
        self._u_b = np.empty((n, n), order="F")  # U_B, column-major
        self._vt_b = np.empty((n, n), order="F")  # V_Bᵀ, column-major
        iwork = np.empty(8 * n + 1, dtype=np.int32)
        _call("dbdsdc", _char("U"), _char("I"), _int(n), _data(self.S), _data(off_diagonal), _data(self._u_b),
              _int(max(n, 1)), _data(self._vt_b), _int(max(n, 1)), None, None, _data(work), _data(iwork))

    def _reflect(self, vect: str, trans: str, x: np.ndarray) -> np.ndarray:
        """Q_b x, Q_bᵀ x (vect "Q") or P_b x, P_bᵀ x (vect "P") for x (n,) or (n, c); returns a new array."""
        out = np.array(x.reshape(self.n, -1), dtype=np.float64, order="F")
        columns = out.shape[1]
        lwork = 64 * max(columns, 1)
        work = np.empty(lwork)
        tau = self._tau_q if vect == "Q" else self._tau_p
        _call("dormbr", _char(vect), _char("L"), _char(trans), _int(self.n), _int(columns), _int(self.n),
              _data(self._a), _int(max(self.n, 1)), _data(tau), _data(out), _int(max(self.n, 1)),
              _data(work), _int(lwork))
        return out.reshape(x.shape)

    def left(self, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        """U x, or Uᵀ x with ``transpose``, for x (n,) or (n, c)."""
        if transpose:
            return self._vt_b @ self._reflect("P", "T", x)
        return self._reflect("P", "N", self._vt_b.T @ x)

    def right(self, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        """V x, or Vᵀ x with ``transpose``, for x (n,) or (n, c)."""
        if transpose:
            return self._u_b.T @ self._reflect("Q", "T", x)
        return self._reflect("Q", "N", self._u_b @ x)
