"""The ask/tell contract every search algorithm implements, independent of keras-tuner.

A controller proposes complete value dicts over a :class:`ParamSpace` and is told the
reward of each. Oracles (``keras_nas.tuning.oracle``) adapt controllers to
keras-tuner; benchmarks and tests may drive them directly.

State (``get_state``/``set_state``) must be JSON-serialisable and complete: restoring it
into a fresh controller and replaying the same rewards must reproduce the same
proposals (RNG states included).
"""

from __future__ import annotations

import abc
import random
from typing import Any, Mapping, Optional, Sequence

from keras_nas.controllers.params import Param, ParamSpace

#: Warm-up architectures proposed first by controllers that do not choose (see ``Controller.warm_up``).
DEFAULT_WARM_TOP = 10


class Controller(abc.ABC):
    """Base class of every search algorithm. Every hook an oracle may call is declared here,
    with its default; the oracle calls nothing else.

    Called by the oracle, in this order for one trial:

    * :meth:`propose` when a worker asks for a trial; the oracle completes the values
      (``ParamSpace.complete``) so every active decision has a plain-typed value.
    * :meth:`discard` when that proposal was rejected (it repeats an earlier trial and
      ``allow_duplicates=False``); :meth:`propose` is then called again.
    * :meth:`observe` once when the trial has ended: its reward (larger is better) or None
      for a failed trial.
    * :meth:`get_state` / :meth:`get_arrays` after every change (state files);
      :meth:`set_state` / :meth:`set_arrays` on resume.
    * :meth:`summary_scalars` after each trial, for TensorBoard (``controller/<name>``).
    * :meth:`set_encoder` once, when the HyperModel has a search space that can encode
      architecture objects (genotypes) as values (warm starts).
    * :meth:`warm_up` once, before the first proposal, when the search is proxy-assisted
      (:class:`~keras_nas.controllers.proxy_assisted.ProxyAssisted`, which then calls the other
      hooks in the order above; it may also :meth:`discard` proposals it did not pick).
    """

    #: What produced the last proposal; ``"identity"`` marks a deliberate re-evaluation
    #: (aging evolution's identity mutation), exempt from duplicate rejection.
    last_origin: Optional[str] = None
    #: A SearchSpace (anything with ``encode(arch) -> values``) for non-dict warm starts.
    encoder: Any = None

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self.rng = random.Random(seed)

    @abc.abstractmethod
    def propose(self, space: ParamSpace) -> dict:
        """Return values for every active param of ``space`` (see ``ParamSpace.complete``)."""

    def observe(
        self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace
    ) -> None:
        """Report a finished proposal. ``reward`` is None when the trial failed (never a parent, and
        REINFORCE gives it a defined update). Larger reward is better."""

    def discard(self, values: Mapping[str, Any], space: ParamSpace) -> None:
        """A proposal (``values``, normally the last one) was rejected -- e.g. it duplicates an
        earlier trial -- and will never be observed (see :meth:`release` for "not this time")."""

    def propose_batch(self, space: ParamSpace, n: int) -> list:
        """``n`` proposals at once, as ``(values, origin)`` pairs, for a caller that keeps some and
        hands the others back through :meth:`release` (proxy-ranked moves). Default: ``n`` calls of
        :meth:`propose`; a model-based controller can rank one candidate set instead."""
        out = []
        for _ in range(int(n)):
            values = self.propose(space)
            out.append((values, self.last_origin))
        return out

    def release(self, values: Mapping[str, Any], space: ParamSpace) -> None:
        """A proposal the caller did not use this time (it kept another of a batch) and that may be
        proposed again later. Default: :meth:`discard`."""
        self.discard(values, space)

    def warm_up(
        self, ranked: Sequence[tuple], space: ParamSpace, top: Optional[int] = None
    ) -> list:
        """Proxy warm-up: ``ranked`` holds ``(values, score)`` of random architectures scored by a
        zero-cost proxy, best first. Use them as prior knowledge if the algorithm has a place for it,
        and return the value dicts to propose first, in order (they are then observed as usual).

        Default: the best ``top`` (None: :data:`DEFAULT_WARM_TOP`), so the controller sees the proxy's
        favourites as its first trials."""
        k = DEFAULT_WARM_TOP if top is None else int(top)
        return [dict(v) for v, _ in ranked[:k]]

    def summary_scalars(self, space: Optional[ParamSpace] = None) -> dict:
        """``{name: float}`` statistics for TensorBoard; the state is left untouched."""
        return {}

    def set_encoder(self, encoder) -> None:
        """Use ``encoder`` for warm starts given as architecture objects (unless one was given)."""
        if self.encoder is None:
            self.encoder = encoder

    def warm_values(self, item, space: ParamSpace) -> dict:
        """Values of one warm-start item (a value dict, or an architecture ``self.encoder`` encodes),
        checked against ``space`` and completed from the controller's RNG."""
        if isinstance(item, Mapping):
            given = dict(item)
        else:
            if self.encoder is None or not hasattr(self.encoder, "encode"):
                raise ValueError(
                    f"warm_start item {item!r:.80} is not a value dict; pass encoder=<SearchSpace> "
                    "(e.g. NASNetCellSpace(num_blocks=5)) so it can be encoded, or give value dicts."
                )
            given = self.encoder.encode(item)
        for name, v in given.items():
            if name in space and not ParamSpace.is_valid(space[name], v):
                opts = space[name].options
                raise ValueError(
                    f"warm_start value {name}={v!r} is not valid for the search space"
                    f"{'' if opts is None else f' (options {list(opts)})'}; fix the warm start or the space."
                )
        return space.complete(given, self.sample_value)

    def sample_value(self, p: Param, _so_far=None):
        """Uniform draw for one param, from the controller's own (persisted) RNG."""
        if p.continuous:
            return p.from_prob(self.rng.random())
        return self.rng.choice(p.options)

    def random_values(self, space: ParamSpace) -> dict:
        return space.complete({}, self.sample_value)

    # -- persistence ------------------------------------------------------------------
    def get_state(self) -> dict:
        """JSON-serialisable state; restoring it reproduces the same future proposals."""
        return {"seed": self.seed, "rng": _rng_to_json(self.rng.getstate())}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.seed = state.get("seed", self.seed)
        if "rng" in state:
            self.rng.setstate(_rng_from_json(state["rng"]))

    def get_arrays(self) -> Optional[dict]:
        """Large numeric state as ``{name: ndarray}`` (saved to an npz file), or None."""
        return None

    def set_arrays(self, arrays: Mapping[str, Any]) -> None:
        raise RuntimeError(
            f"{type(self).__name__} keeps no arrays, but the saved state has some; "
            "resume with the controller that wrote it."
        )


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
