"""keras-nas: neural architecture search for Keras.

Light names (genotypes, spaces, zoo) import without TensorFlow; Keras-backed names
(``build_network``, tuners, oracles) are imported on first use so that
``import keras_nas`` stays fast.
"""

import importlib

__version__ = "0.1.0"

from keras_nas import zoo  # noqa: E402  (pure Python)
from keras_nas.space import Genotype, GenotypeError  # noqa: E402

# name -> module that defines it; resolved lazily by __getattr__.
_LAZY = {
    "build_network": "keras_nas.blocks.network",
    "build_nb201_network": "keras_nas.blocks.network",
    "build_macro_network": "keras_nas.blocks.network",
    "load_model": "keras_nas.blocks.network",
    "AgingEvolution": "keras_nas.tuning.tuners",
    "ReinforceSearch": "keras_nas.tuning.tuners",
    "RandomArchitectureSearch": "keras_nas.tuning.tuners",
    "PredictorSearch": "keras_nas.tuning.tuners",
    "PredictorOracle": "keras_nas.tuning.oracle",
    "ControllerOracle": "keras_nas.tuning.oracle",
    "RandomOracle": "keras_nas.tuning.oracle",
    "AgingEvolutionOracle": "keras_nas.tuning.oracle",
    "ReinforceOracle": "keras_nas.tuning.oracle",
    "StateFileError": "keras_nas.tuning.errors",
    "MedianStopping": "keras_nas.controllers.stopping",
    "ASHA": "keras_nas.controllers.stopping",
    "SpaceHyperModel": "keras_nas.tuning.hypermodels",
    "NASNetHyperModel": "keras_nas.tuning.hypermodels",
    "NB201HyperModel": "keras_nas.tuning.hypermodels",
    "MacroHyperModel": "keras_nas.tuning.hypermodels",
    "oneshot_search": "keras_nas.oneshot",  # keras_nas.oneshot.search under a name that is not the CLI's `search`
    "OneShotResult": "keras_nas.oneshot",
}
_SUBMODULES = {
    "blocks",
    "controllers",
    "tuning",
    "transfer",
    "benchmarks",
    "space",
    "cli",
    "data",
    "distribute",
    "families",
    "rundir",
    "jobs",
    "proxies",
    "oneshot",
}


def __getattr__(name):
    if name == "oneshot_search":
        return importlib.import_module("keras_nas.oneshot").search
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_nas.{name}")
    raise AttributeError(f"module 'keras_nas' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
