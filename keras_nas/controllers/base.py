"""The ask/tell contract every search algorithm implements, independent of keras-tuner.

A controller proposes complete value dicts over a :class:`ParamSpace` and is told the
reward of each. Oracles (``keras_nas.controllers.oracles``) adapt controllers to
keras-tuner; benchmarks and tests may drive them directly.

State (``get_state``/``set_state``) must be JSON-serialisable and complete: restoring it
into a fresh controller and replaying the same rewards must reproduce the same
proposals (RNG states included).
"""

from __future__ import annotations

import abc
import random
from typing import Any, Mapping, Optional

from keras_nas.controllers.params import Param, ParamSpace


class Controller(abc.ABC):
    """Base class. Subclasses implement :meth:`propose` and usually :meth:`observe`."""

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self.rng = random.Random(seed)

    @abc.abstractmethod
    def propose(self, space: ParamSpace) -> dict:
        """Return values for every active param of ``space`` (see ``ParamSpace.complete``)."""

    def observe(self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace) -> None:
        """Report a finished proposal. ``reward`` is None when the trial failed (never a parent, and
        REINFORCE gives it a defined update). Larger reward is better."""

    def sample_value(self, p: Param, _so_far=None):
        """Uniform draw for one param, from the controller's own (persisted) RNG."""
        if p.continuous:
            return p.from_prob(self.rng.random())
        return self.rng.choice(p.options)

    def random_values(self, space: ParamSpace) -> dict:
        return space.complete({}, self.sample_value)

    # -- persistence ------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"seed": self.seed, "rng": _rng_to_json(self.rng.getstate())}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.seed = state.get("seed", self.seed)
        if "rng" in state:
            self.rng.setstate(_rng_from_json(state["rng"]))


class RandomController(Controller):
    """Uniform random search: the baseline every benchmark reports beside the others."""

    def propose(self, space: ParamSpace) -> dict:
        return self.random_values(space)


def _rng_to_json(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(state):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
