"""Chebyshev collocation on [-1, 1]: points, differentiation matrix, coefficients, evaluation.

The points are the Chebyshev-Gauss-Lobatto points ``x_j = cos(jπ/n)``, j = 0..n (so x_0 = 1, x_n = -1).
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import torch


def points(n: int) -> np.ndarray:
    """The n+1 Chebyshev-Gauss-Lobatto points cos(jπ/n), from 1 down to -1."""
    return np.cos(np.pi * np.arange(n + 1) / n)


def differentiation_matrix(n: int) -> np.ndarray:
    """The (n+1)x(n+1) first-derivative collocation matrix on :func:`points` (diagonal by negative row sums)."""
    x = points(n)
    c = np.where((np.arange(n + 1) == 0) | (np.arange(n + 1) == n), 2.0, 1.0) * (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :] + np.eye(n + 1)
    d = np.outer(c, 1.0 / c) / dx
    return d - np.diag(d.sum(axis=1))


def coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients a_k (last axis) of the interpolant of ``values`` given at :func:`points`.

    ``sum_k a_k T_k(x_j) = values[..., j]``; computed by a type-I DCT.
    """
    n = values.shape[-1] - 1
    a = scipy.fft.dct(values, type=1, axis=-1) / n
    a[..., 0] /= 2
    a[..., n] /= 2
    return a


def vandermonde(x: torch.Tensor, n: int) -> torch.Tensor:
    """T_0..T_n at x (M,) as an (M, n+1) tensor, by the three-term recurrence (differentiable in x)."""
    columns = [torch.ones_like(x), x]
    for _ in range(2, n + 1):
        columns.append(2 * x * columns[-1] - columns[-2])
    return torch.stack(columns[: n + 1], dim=1)
