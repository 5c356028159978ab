"""The numerical core: the net as a function of a flat θ (:mod:`.model`), Taylor-mode derivatives and the residual
Jacobian (:mod:`.derivatives`), problems and their point sets (:mod:`.problem`), the objective contract
(:mod:`.objective`), the optimizer base class (:mod:`.optimizer`), and the linear algebra and line searches the
built-in optimizers share (:mod:`.linalg`, :mod:`.spectral`, :mod:`.grid_search`, :mod:`.wolfe`).

It imports torch and nothing of the execution or reporting layers.
"""
