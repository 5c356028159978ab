"""Performance: the probe of the Jacobian/SVD kernels against the machine's matmul peak (``pinnbench bench``)."""
