"""Compatibility: the names ``pinnbench.runner`` held before the run pipeline was split by layer.

New code imports from :mod:`pinnbench.execution.run` (one run and its identity), :mod:`~pinnbench.execution.suite`
(the suite), :mod:`~pinnbench.execution.queue` (the work queue), :mod:`~pinnbench.execution.progress` (terminal
output) and :mod:`pinnbench.store` (every results-folder rule).
"""
from .execution.progress import Progress
from .execution.queue import WorkQueue
from .execution.run import (ContractError, Run, RunObserver, RunSpec, bound_hparams, check_theta, code_identity,
                            evaluation_schedule, execute, execution_facts, failed_record, net_text, resolve,
                            resolve_hparams, run_key, seed_global_rngs, spec_key, step_cap)
from .execution.suite import SuiteResult, check_net, effective_protocol, grid, plan, run_suite
from .store import Manifest, machine, stored_manifests

resolved_hparams = bound_hparams  # the former name: now the bound constructor arguments

__all__ = ["ContractError", "Manifest", "Progress", "Run", "RunObserver", "RunSpec", "SuiteResult", "WorkQueue",
           "bound_hparams", "resolved_hparams", "check_net", "check_theta", "code_identity", "effective_protocol", "evaluation_schedule",
           "execute", "execution_facts", "failed_record", "grid", "machine", "net_text", "plan", "resolve",
           "resolve_hparams", "run_key", "run_suite", "seed_global_rngs", "spec_key", "step_cap", "stored_manifests"]
