"""Precision policy.

Importing dlnfusion changes nothing in JAX's configuration: a user's own JAX code keeps the
precision the user chose (float32 unless ``jax_enable_x64`` is set).

dlnfusion's own computations choose their precision per call:

* training (:func:`dlnfusion.train`, :func:`dlnfusion.simulate`) runs in ``dtype``, float64 by
  default, because the theory-versus-simulation comparisons need it (initial weights of 1e-9,
  growing modes of 1e-17, relative agreements of 1e-9). Pass ``dtype="float32"`` for speed,
  e.g. for networks on images;
* initialization (:func:`dlnfusion.init_batch`) and the theory functions that use JAX compute
  in float64;
* float64 work happens inside :func:`float64`, a scope that turns JAX's 64-bit mode on for the
  calling thread only and restores the previous setting on exit. Results leave it as numpy
  arrays.

To run your own JAX code in float64 too, call :func:`enable_float64` once at start-up (it sets
``jax_enable_x64`` for the whole process, as ``JAX_ENABLE_X64=1`` in the environment does), or
wrap the code in ``with dlnfusion.float64():``.
"""
from __future__ import annotations

import jax
import numpy as np

__all__ = ["float64", "enable_float64", "resolve_dtype", "DTYPES"]

#: The dtypes :func:`dlnfusion.train` accepts, by name.
DTYPES = {"float64": np.float64, "float32": np.float32}


def float64():
    """Context manager: JAX's 64-bit mode on inside (this thread only), restored on exit."""
    return jax.enable_x64(True)


def enable_float64() -> None:
    """Turn on JAX's 64-bit mode for the whole process (``jax_enable_x64 = True``)."""
    jax.config.update("jax_enable_x64", True)


def resolve_dtype(dtype) -> type:
    """``"float64"``/``"float32"`` (or the numpy/JAX dtypes) as a numpy scalar type."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.type not in DTYPES.values():
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    return dt.type
