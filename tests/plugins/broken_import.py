"""A plugin whose import fails."""
import pinnbench_no_such_module  # noqa: F401
