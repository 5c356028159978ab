"""asv benchmarks of the natural-gradient hot path at the problems' ``paper`` sizes.

Kernels: the residual Jacobian by each derivative path, the thin SVD and the truncated pseudo-inverse, one
residual evaluation, the 31-point grid line search, and one full step of each SVD-based optimizer. Threads
are pinned in ``setup`` (``PINNBENCH_ASV_THREADS``, default 1: stable numbers on a shared machine).

These files run against older commits too (``scripts/asv_regression_check.py`` puts each commit's code on
ASV_PYTHONPATH): they use only the stable public API, and a benchmark whose subject a commit lacks raises
NotImplementedError in ``setup``, which asv records as skipped.
"""
import os

import torch

import pinnbench
from pinnbench.linalg import rank_above, relative_cutoff, thin_svd, truncated_solve
from pinnbench.linesearch import grid_line_search
from pinnbench.objective import Objective
from pinnbench.registry import entries

THREADS = int(os.environ.get("PINNBENCH_ASV_THREADS", "1"))
SEED = 6865
PROBLEMS = ["laplace2d", "heat", "laplace5d", "allen_cahn"]
"""The ANaGRAM paper's problems (N x P: 900x129, 871x257, 4500x449, 1723x921); absent ones are skipped."""
SVD_OPTIMIZERS = ["anagram", "engd", "amstramgram"]


def _instance(problem: str):
    torch.set_num_threads(THREADS)
    if problem not in entries("problem"):
        raise NotImplementedError(f"problem {problem!r} is not registered at this commit")
    return pinnbench.build(problem, SEED, "paper")


class _Kernel:
    params = [PROBLEMS]
    param_names = ["problem"]
    rounds = 1  # one process per benchmark: the whole suite takes minutes, not tens of minutes
    repeat = (3, 7, 4.0)  # 3 to 7 samples, at most ~4 s of them
    timeout = 300


class Jacobian(_Kernel):
    """The residual Jacobian J (N x P) and r, by the fast Taylor path and by the generic torch.func path."""

    params = [PROBLEMS, ["taylor", "generic"]]
    param_names = ["problem", "path"]

    def setup(self, problem, path):
        inst = _instance(problem)
        self.objective = Objective(inst.model, inst.point_sets.groups, derivatives=path)
        self.theta = inst.theta0

    def time_jacobian(self, problem, path):
        self.objective.jacobian(self.theta)

    def peakmem_jacobian(self, problem, path):
        self.objective.jacobian(self.theta)


class SVD(_Kernel):
    """The thin SVD of J and the truncated pseudo-inverse direction V_k S_k⁻¹ U_kᵀ r built on it."""

    def setup(self, problem):
        inst = _instance(problem)
        self.jac, self.r = inst.objective.jacobian(inst.theta0)
        self.n_params = inst.objective.n_params

    def time_thin_svd(self, problem):
        thin_svd(self.jac)

    def peakmem_thin_svd(self, problem):
        thin_svd(self.jac)

    def time_pseudo_inverse_direction(self, problem):
        svd = thin_svd(self.jac)
        truncated_solve(svd, self.r, rank_above(svd, relative_cutoff(svd, self.n_params)))


class ImplicitSVD(_Kernel):
    """The thin SVD with Q kept implicit (pinnbench.linalg.implicit_svd) and the coefficients Uᵀr."""

    def setup(self, problem):
        import pinnbench.linalg
        if not hasattr(pinnbench.linalg, "implicit_svd"):
            raise NotImplementedError("pinnbench.linalg.implicit_svd does not exist at this commit")
        inst = _instance(problem)
        self.implicit_svd = pinnbench.linalg.implicit_svd
        self.jac, self.r = inst.objective.jacobian(inst.theta0)

    def time_implicit_svd_coefficients(self, problem):
        self.implicit_svd(self.jac).coefficients(self.r)


class LineSearch(_Kernel):
    """One residual evaluation and the 31-point 2^-k grid line search along the ANaGRAM direction at θ0."""

    def setup(self, problem):
        inst = _instance(problem)
        self.objective, self.theta = inst.objective, inst.theta0
        jac, r = self.objective.jacobian(self.theta)
        svd = thin_svd(jac)
        self.direction = truncated_solve(svd, r, rank_above(svd, relative_cutoff(svd, self.objective.n_params)))

    def time_residuals(self, problem):
        self.objective.residuals(self.theta)

    def time_grid_line_search(self, problem):
        grid_line_search(self.objective, self.theta, self.direction)

    def peakmem_grid_line_search(self, problem):
        grid_line_search(self.objective, self.theta, self.direction)


class Step(_Kernel):
    """One full step of each SVD-based optimizer from θ0, with the problem's published hyperparameters."""

    params = [PROBLEMS, SVD_OPTIMIZERS]
    param_names = ["problem", "optimizer"]

    def setup(self, problem, optimizer):
        inst = _instance(problem)
        if optimizer not in entries("optimizer"):
            raise NotImplementedError(f"optimizer {optimizer!r} is not registered at this commit")
        self.objective, self.theta = inst.objective, inst.theta0
        self.optimizer = pinnbench.get_optimizer(optimizer, **inst.problem.optimizer_defaults.get(optimizer, {}))
        self.optimizer.reset(self.objective, self.theta)

    def time_step(self, problem, optimizer):
        self.optimizer.step(self.objective, self.theta)

    def peakmem_step(self, problem, optimizer):
        self.optimizer.step(self.objective, self.theta)


class InRunStep:
    """The step as a user's run executes it: the median over steps 6-30 of a real run (paper points, seed 6865),
    with the run loop's evaluations, recording and allocations between steps (``pinnbench.perf.probe``).
    The warm ``Step`` above times the same step alone; a gap between the two is what only users see."""

    params = [["laplace2d", "heat"], ["anagram", "amstramgram"]]
    param_names = ["problem", "optimizer"]
    rounds = 1
    repeat = 1  # each value is already a median over 25 steps
    timeout = 600

    def setup(self, problem, optimizer):
        torch.set_num_threads(THREADS)
        try:
            from pinnbench.perf.probe import in_run_step
        except ImportError as exc:
            raise NotImplementedError("the in-run step probe is not at this commit") from exc
        if problem not in entries("problem") or optimizer not in entries("optimizer"):
            raise NotImplementedError(f"{problem} / {optimizer} is not registered at this commit")
        self.in_run_step = in_run_step

    def track_in_run_step(self, problem, optimizer):
        return 1e3 * self.in_run_step(problem, optimizer, torch.device("cpu"))

    track_in_run_step.unit = "ms"
