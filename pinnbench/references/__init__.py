"""Reference solutions computed by pinnbench itself (no downloads): Allen-Cahn by a Chebyshev/ETDRK4 solver,
cached on disk, and Burgers by Cole-Hopf quadrature, evaluated pointwise."""
from . import allen_cahn, burgers
from .cache import CACHE_ENV, cache_dir, cached

__all__ = ["CACHE_ENV", "allen_cahn", "burgers", "cache_dir", "cached"]
