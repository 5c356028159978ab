"""Problem variants with the nets of the AMStraMGRAM study in pinnbench (docs/amstramgram.md).

The AMStraMGRAM paper does not publish its nets. These variants keep each problem's PDE, point sets, evaluation
and ANaGRAM defaults and change only the net. Load with ``--plugin scripts/amstramgram_nets.py``.
"""
from pinnbench import get_problem, register_problem

Laplace2D = type(get_problem("laplace2d"))
Heat = type(get_problem("heat"))


@register_problem("laplace2d_w64")
class Laplace2DWide(Laplace2D):
    description = "laplace2d with one hidden layer of 64 tanh units (P = 257) instead of 32"
    layers = (2, 64, 1)


@register_problem("heat_w64x2")
class HeatDeep(Heat):
    description = "heat with two hidden layers of 64 tanh units (P = 4417) instead of one"
    layers = (2, 64, 64, 1)
