"""Zero-cost proxies for keras-nas networks and any Keras model (``keras_nas.proxies.score``).

Why: a proxy ranks untrained architectures in seconds instead of training each one; see
``builtin`` for the definitions, ``core`` for the registry and scoring API, and ``nb201`` for
scoring all of NAS-Bench-201 in one traced graph.
"""

from keras_nas.proxies.core import (
    NAMES,
    Proxy,
    available,
    kernel_variables,
    register,
    reinit,
    reinit_values,
    score,
    score_many,
)

__all__ = [
    "NAMES",
    "Proxy",
    "available",
    "kernel_variables",
    "register",
    "reinit",
    "reinit_values",
    "score",
    "score_many",
]
