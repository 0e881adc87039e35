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
    "AgingEvolution": "keras_nas.controllers.tuners",
    "ReinforceSearch": "keras_nas.controllers.tuners",
    "RandomArchitectureSearch": "keras_nas.controllers.tuners",
    "RandomOracle": "keras_nas.controllers.oracles",
    "NB201HyperModel": "keras_nas.controllers.hypermodels",
    "MacroHyperModel": "keras_nas.controllers.hypermodels",
    "AgingEvolutionOracle": "keras_nas.controllers.oracles",
    "ReinforceOracle": "keras_nas.controllers.oracles",
    "NASNetHyperModel": "keras_nas.controllers.hypermodels",
}
_SUBMODULES = {"blocks", "controllers", "transfer", "benchmarks", "space", "cli", "data", "distribute"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_nas.{name}")
    raise AttributeError(f"module 'keras_nas' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
