"""Aging (regularized) evolution, Real, Aggarwal, Huang & Le, AAAI 2019.

Algorithm (the paper's Alg. 1, made asynchronous the way its distributed version is):

* The first ``P`` proposals are the warm-start architectures (if any), then random ones.
* Afterwards each proposal samples ``S`` members of the population *with replacement*,
  takes the best as parent and applies exactly one mutation to a copy of it.
* A finished trial joins the population (on the right); when the population exceeds
  ``P`` its oldest member (the leftmost, earliest to join) dies, whatever its reward.
* Failed trials (reward ``None``, NaN, inf) never join, so they are never parents.
  A failed initial random trial is not replaced: the population then fills up to ``P``
  with children (no removal happens until it holds ``P`` members).

Proposals may be outstanding (parallel workers): the population holds only finished
members and a proposal made while it is still empty is random.

Mutation on a :class:`ParamSpace` (one decision, active in the parent, changed to a
*different* value):

* cell spaces (decisions of kind ``input``/``op``): AmoebaNet's hidden-state mutation or
  op mutation with equal probability (a kind first, then a random decision of that kind);
  generic decisions in the same space form a third, equally likely group;
* identity mutation (child = parent) with probability ``identity_prob`` (default 0.05 when
  the space has input/op decisions, else 0);
* continuous params (Float without step) move by a Gaussian step of std ``sigma`` in
  probability space (reflected at 0 and 1);
* afterwards :meth:`ParamSpace.complete` re-resolves conditional params: newly active
  ones are drawn at random, inactive ones dropped.

All work per proposal/observation is O(P + number of params); nothing scans the history.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Iterable, Mapping, Optional

from keras_nas.controllers.base import Controller
from keras_nas.controllers.params import Param, ParamSpace, plain
from keras_nas.space.base import KIND_GENERIC, KIND_INPUT, KIND_OP

DEFAULT_IDENTITY_PROB = 0.05
_KIND_ORDER = (KIND_INPUT, KIND_OP, KIND_GENERIC)


class AgingEvolutionController(Controller):
    """Aging-evolution controller (ask/tell).

    Args:
      population_size: P (paper: 100; NAS-Bench-201 REA: 10).
      sample_size: S, tournament size, sampled with replacement (paper: 25; NB201: 3).
      seed: seed of the controller's own (persisted) RNG.
      warm_start: architectures proposed first, as value dicts or objects ``encoder.encode``
        accepts (e.g. zoo genotypes with a :class:`~keras_nas.space.NASNetCellSpace`). They
        count toward the P initial proposals; missing values are drawn at random.
      encoder: a :class:`~keras_nas.space.SearchSpace` (anything with ``encode``) for
        non-dict warm starts.
      identity_prob: probability of the identity mutation; ``None`` = 0.05 on spaces with
        input/op decisions, else 0.
      sigma: std of the Gaussian step (probability space) for continuous params.
    """

    def __init__(
        self,
        population_size: int = 100,
        sample_size: int = 25,
        seed: Optional[int] = None,
        *,
        warm_start: Optional[Iterable] = None,
        encoder=None,
        identity_prob: Optional[float] = None,
        sigma: float = 0.1,
    ):
        super().__init__(seed)
        if (
            not isinstance(population_size, int)
            or isinstance(population_size, bool)
            or population_size < 2
        ):
            raise ValueError(
                f"population_size must be an integer >= 2 (a tournament needs a population), got {population_size!r}."
            )
        if not isinstance(sample_size, int) or isinstance(sample_size, bool) or sample_size < 1:
            raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}.")
        if sample_size > population_size:
            raise ValueError(
                f"sample_size ({sample_size}) must not exceed population_size ({population_size}); "
                "the paper uses S=25 for P=100."
            )
        if identity_prob is not None and not 0.0 <= identity_prob < 1.0:
            raise ValueError(f"identity_prob must be in [0, 1), got {identity_prob!r}.")
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}.")
        self.population_size = population_size
        self.sample_size = sample_size
        self.identity_prob = identity_prob
        self.sigma = float(sigma)
        self.warm_start = list(warm_start or [])
        self.encoder = encoder
        self._reset_state()

    def _reset_state(self):
        # Members: {"values": dict, "reward": float, "age": int (join order, 0-based)}.
        self.population: deque = deque()
        self.num_proposed = 0
        self.num_initial = 0  # warm-start + random proposals made in the initial phase
        self.num_warm = 0  # warm starts proposed so far
        self.num_mutations = 0
        self.num_identity = 0
        self.num_observed = 0
        self.num_failed = 0
        self.num_joined = 0  # next member's age
        self.best: Optional[dict] = None
        self.last_origin: Optional[str] = None  # 'warm' | 'random' | 'mutation' | 'identity'

    # -- ask -----------------------------------------------------------------------------
    @property
    def initial_size(self) -> int:
        return max(self.population_size, len(self.warm_start))

    def propose(self, space: ParamSpace) -> dict:
        self.num_proposed += 1
        if self.num_warm < len(self.warm_start):
            values = self.warm_values(self.warm_start[self.num_warm], space)
            self.num_warm += 1
            self.num_initial += 1
            self.last_origin = "warm"
            return values
        if self.num_initial < self.initial_size:
            self.num_initial += 1
            self.last_origin = "random"
            return self.random_values(space)
        if not self.population:  # everything still running (or failed): nothing to mutate yet
            self.last_origin = "random"
            return self.random_values(space)
        parent = self.tournament()
        return self.mutate(parent["values"], space)

    def tournament(self) -> dict:
        """Best of ``sample_size`` members drawn with replacement (ties: the first drawn)."""
        pop = self.population
        best = None
        for _ in range(self.sample_size):
            m = pop[self.rng.randrange(len(pop))]
            if best is None or m["reward"] > best["reward"]:
                best = m
        return best

    def mutate(self, parent: Mapping[str, Any], space: ParamSpace) -> dict:
        """Copy of ``parent`` with exactly one active decision changed (or unchanged, identity)."""
        values = space.complete(parent, self.sample_value)  # re-resolve against today's space
        mutable = [p for p in space.params if p.name in values and _mutable(p)]
        identity_prob = self.identity_prob
        if identity_prob is None:
            identity_prob = (
                DEFAULT_IDENTITY_PROB
                if any(p.kind in (KIND_INPUT, KIND_OP) for p in space)
                else 0.0
            )
        if not mutable or (identity_prob > 0 and self.rng.random() < identity_prob):
            self.num_identity += 1
            self.last_origin = "identity"
            return values
        kinds = [k for k in _KIND_ORDER if any(p.kind == k for p in mutable)]
        kinds += sorted({p.kind for p in mutable} - set(kinds))
        kind = kinds[self.rng.randrange(len(kinds))]
        candidates = [p for p in mutable if p.kind == kind]
        p = candidates[self.rng.randrange(len(candidates))]
        child = dict(values)
        child[p.name] = p.mutated(values[p.name], self.rng, self.sigma)
        self.num_mutations += 1
        self.last_origin = "mutation"
        # Keep the mutated value; conditionals it (de)activates are redrawn/dropped.
        return space.complete(child, self.sample_value)

    def warm_up(self, ranked, space: ParamSpace, top: Optional[int] = None) -> list:
        """Proxy warm-up: the best-ranked architectures become the initial population. They take the
        place of the initial *random* proposals (explicit ``warm_start`` items keep theirs): at most
        ``initial_size`` minus the proposals made or reserved so far (``top`` caps it further)."""
        free = self.initial_size - self.num_initial - (len(self.warm_start) - self.num_warm)
        k = max(0, min(len(ranked), free if top is None else min(int(top), free)))
        self.num_initial += k  # proposed on this controller's behalf, as its initial phase
        return [dict(v) for v, _ in ranked[:k]]

    # -- tell ----------------------------------------------------------------------------
    def observe(
        self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace = None
    ) -> None:
        self.num_observed += 1
        if reward is None or not math.isfinite(float(reward)):
            self.num_failed += 1
            return
        member = {
            "values": {k: plain(v) for k, v in values.items()},
            "reward": float(reward),
            "age": self.num_joined,
        }
        self.num_joined += 1
        self.population.append(member)
        while len(self.population) > self.population_size:
            self.population.popleft()  # the oldest dies
        if self.best is None or member["reward"] > self.best["reward"]:
            self.best = member

    # -- statistics ----------------------------------------------------------------------
    def summary_scalars(self, space: ParamSpace = None) -> dict:
        """``{name: float}`` for TensorBoard: population best / median fitness and size, failed trials."""
        out = {"population/size": float(len(self.population)), "failed": float(self.num_failed)}
        rewards = sorted(m["reward"] for m in self.population)
        if rewards:
            n = len(rewards)
            out["population/best"] = rewards[-1]
            out["population/median"] = (rewards[(n - 1) // 2] + rewards[n // 2]) / 2.0
        return out

    # -- persistence ---------------------------------------------------------------------
    _COUNTERS = (
        "num_proposed",
        "num_initial",
        "num_warm",
        "num_mutations",
        "num_identity",
        "num_observed",
        "num_failed",
        "num_joined",
        "last_origin",
    )

    def get_state(self) -> dict:
        state = super().get_state()
        state.update({k: getattr(self, k) for k in self._COUNTERS})
        state["population"] = [dict(m, values=dict(m["values"])) for m in self.population]
        state["best"] = (
            None if self.best is None else dict(self.best, values=dict(self.best["values"]))
        )
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self._reset_state()
        for k in self._COUNTERS:
            if k in state:
                setattr(self, k, state[k])
        self.population = deque(
            {"values": dict(m["values"]), "reward": float(m["reward"]), "age": int(m["age"])}
            for m in state.get("population", [])
        )
        # A smaller population_size on resume: the oldest extra members die now.
        while len(self.population) > self.population_size:
            self.population.popleft()
        b = state.get("best")
        self.best = (
            None
            if b is None
            else {"values": dict(b["values"]), "reward": float(b["reward"]), "age": int(b["age"])}
        )


def _mutable(p: Param) -> bool:
    return p.continuous or len(p.options) > 1
