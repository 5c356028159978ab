"""The execution layer: one run and its identity (:mod:`.run`), the suite (:mod:`.suite`) and its work queue
(:mod:`.queue`), progress output (:mod:`.progress`), and where runs execute (:mod:`.backend`: the interface and
the in-process backend; :mod:`pinnbench.backends`: isolated workers, worker processes, Dask).

Imports go downwards only: suite -> queue, backend -> run -> the numerical core, the registry and the store.
"""
