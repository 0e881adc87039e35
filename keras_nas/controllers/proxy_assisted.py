"""Proxy-assisted search: a zero-cost proxy steers any controller (Abdelfattah et al. 2021; Mellor et al. 2021).

Why: a zero-cost proxy (``keras_nas.proxies``: synflow, naswot, ...) scores an untrained
architecture in well under a second, so many more architectures can be *scored* than trained.
:class:`ProxyAssisted` wraps any :class:`~keras_nas.controllers.base.Controller` and spends
proxy evaluations in two places:

* **Warm-up** (``samples`` = N > 0), at the first proposal: N architectures are drawn uniformly
  (the wrapper's own RNG; repeats are scored once), scored, and ranked best first. The inner
  controller's :meth:`~keras_nas.controllers.base.Controller.warm_up` hook turns the ranking into
  prior knowledge and returns the architectures to propose first. Aging evolution: the best ``P``
  become its initial population (they take the place of its random initial proposals); REINFORCE:
  its policy is pre-trained on the ranking (rank-normalised advantages) and the best few are
  proposed first; any other controller (the default hook): the best ``top`` are proposed first,
  so it observes them as its first trials (a predictor's prior).
* **Ranked moves** (``candidates`` = C > 1): each later proposal asks the inner controller for C
  proposals, scores them, and keeps the best-scored one not proposed before (the best-scored one
  if all were); the others are handed back through ``release`` (they may be proposed again).
  The C proposals come from the inner controller's ``propose_batch`` (the predictor ranks one
  candidate set instead of running C acquisitions). Proposals the inner controller
  marks as its initial phase or a deliberate re-evaluation (``last_origin`` ``"warm"``,
  ``"random"`` or ``"identity"``) are taken as they are, and with probability ``explore`` the
  first candidate is taken unranked (Abdelfattah et al.'s notebook keeps a random move 25% of
  the time).

The proxy is any callable ``values -> float`` (larger = predicted better): a tabular benchmark
passes precomputed scores; the tuners build the model and call ``keras_nas.proxies.score`` for
``proxy="synflow"`` (``keras_nas.tuning.proxy_scoring``). Exceptions and non-finite scores rank
last; a proxy that fails on each of the first 3 architectures raises (a configuration error).

Proxy calls, counted exactly: one per *distinct* architecture scored in this process
(``num_proxy_calls``; the scores are cached in memory, not in the state). In the warm-up that is
the N draws less repeats; per ranked move at most C; and every proposal that was not scored
already is scored once (so each trial has a proxy score: ``summary_scalars`` publishes
``proxy/last``, the score of the last observed trial). ``proxy_seconds`` is their wall time,
which is search time: budgets that count overhead count it (``NASBench201.simulate`` also
charges a fixed simulated cost per call, ``proxy_cost_s``).

State: the inner controller's state plus the wrapper's RNG, the queue of warm-up proposals,
the proposals already made (short hashes, for the "not proposed before" preference) and the
scores of outstanding proposals; arrays are the inner controller's. Pure Python.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from typing import Any, Callable, Mapping, Optional

from keras_nas.controllers.base import Controller, _rng_from_json, _rng_to_json
from keras_nas.controllers.params import ParamSpace

#: Proposals the inner controller makes in its initial phase or as a deliberate re-evaluation:
#: never replaced by a ranked candidate.
UNRANKED_ORIGINS = frozenset({"warm", "random", "identity"})
_CACHE_LIMIT = 200_000
_SETUP_ERROR_AFTER = 3  # this many failures before any success: the proxy itself is broken
#: Defaults of the oracles' ``proxy_samples`` / ``proxy_candidates`` (chosen on NAS-Bench-201, see
#: ``benchmarks/README.md``, "Proxy-assisted search on NAS-Bench-201").
DEFAULT_SAMPLES = 1000
DEFAULT_CANDIDATES = 10


def _finite(s) -> Optional[float]:
    """JSON-safe score: None for a missing or non-finite one."""
    return float(s) if s is not None and math.isfinite(float(s)) else None


def _key(space: ParamSpace, values: Mapping[str, Any]) -> str:
    raw = json.dumps(space.key(values), default=str, separators=(",", ":"))
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=8).hexdigest()


class ProxyAssisted(Controller):
    """Any controller, warmed up and steered by a zero-cost proxy (see the module docstring).

    Args:
      inner: the controller being assisted (evolution, REINFORCE, predictor, random, ...).
      proxy: ``values -> float``, larger is better; None until :meth:`set_proxy` (the tuners set
        it in ``search()`` when the oracle was given a proxy name).
      samples: N, random architectures scored in the warm-up (0: no warm-up).
      candidates: C, proposals scored per ranked move (1: no ranked moves).
      top: how many warm-up architectures the inner controller uses (None: its own choice, see
        its ``warm_up``).
      explore: probability that a move is taken unranked.
      seed: seeds the wrapper's RNG (warm-up draws, explore draws); the inner controller keeps its own.
    """

    def __init__(
        self,
        inner: Controller,
        proxy: Optional[Callable[[dict], float]] = None,
        *,
        samples: int = 0,
        candidates: int = 1,
        top: Optional[int] = None,
        explore: float = 0.0,
        seed: Optional[int] = None,
    ):
        if not isinstance(inner, Controller):
            raise TypeError(
                f"ProxyAssisted wraps a keras_nas Controller, got {type(inner).__name__}."
            )
        if isinstance(inner, ProxyAssisted):
            raise ValueError(
                "ProxyAssisted: the controller is already proxy-assisted; wrap it once."
            )
        if proxy is not None and not callable(proxy):
            raise TypeError(f"proxy must be callable(values) -> float, got {type(proxy).__name__}.")
        for name, v, lo in (("samples", samples, 0), ("candidates", candidates, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"ProxyAssisted: {name} must be an integer >= {lo}, got {v!r}.")
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 0):
            raise ValueError(f"ProxyAssisted: top must be None or an integer >= 0, got {top!r}.")
        if not 0.0 <= float(explore) <= 1.0:
            raise ValueError(f"ProxyAssisted: explore must be in [0, 1], got {explore!r}.")
        super().__init__(seed)
        self.rng = random.Random(None if seed is None else f"keras-nas-proxy:{seed}")
        self.inner = inner
        self.proxy = proxy
        self.samples, self.candidates, self.top, self.explore = (
            samples,
            candidates,
            top,
            float(explore),
        )
        self._cache: dict = {}  # key -> score (this process only)
        self.num_proxy_calls = 0
        self.proxy_seconds = 0.0
        self.num_proxy_errors = 0
        self._first_error: Optional[str] = None
        self._reset_state()

    def _reset_state(self):
        self.warmed_up = False
        self.queue: list = []  # warm-up proposals still to make: [[values, score], ...]
        self.seen: set = set()  # keys of every proposal made
        self.pending: dict = {}  # key -> score of proposals not yet observed
        self.last_score: Optional[float] = None
        self.num_ranked = 0  # ranked moves made
        self.num_warm_proposed = 0
        self.last_origin = None

    # -- plumbing: the inner controller's hooks ---------------------------------------------
    def __getattr__(self, name):  # population, baseline, ... of the inner controller
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def set_proxy(self, proxy: Callable[[dict], float]) -> None:
        """Install the scoring function (``values -> float``)."""
        if not callable(proxy):
            raise TypeError(f"proxy must be callable(values) -> float, got {type(proxy).__name__}.")
        self.proxy = proxy
        self._cache = {}

    def set_encoder(self, encoder) -> None:
        self.inner.set_encoder(encoder)

    def sample_value(self, p, _so_far=None):
        return self.inner.sample_value(p, _so_far)

    # -- scoring ------------------------------------------------------------------------
    def score(self, values: Mapping[str, Any], space: ParamSpace) -> float:
        """The proxy's score of ``values`` (cached per architecture; -inf when the proxy fails)."""
        k = _key(space, values)
        hit = self._cache.get(k)
        if hit is not None:
            return hit
        if self.proxy is None:
            raise RuntimeError(
                "ProxyAssisted: no proxy to score with. Pass a callable values -> float (proxy=...), or, for a "
                "proxy name such as 'synflow', search with a keras-nas tuner: its search() builds each candidate "
                "model and installs the scorer (oracle.controller.set_proxy(fn) does it by hand)."
            )
        t0 = time.perf_counter()
        try:
            s = float(self.proxy(dict(values)))
        except Exception as e:  # noqa: BLE001 - an architecture the proxy cannot score ranks last
            self.num_proxy_errors += 1
            self._first_error = self._first_error or f"{type(e).__name__}: {e}"
            if (
                self.num_proxy_errors >= _SETUP_ERROR_AFTER
                and self.num_proxy_errors == self.num_proxy_calls + 1
            ):
                raise RuntimeError(
                    f"ProxyAssisted: the proxy failed on each of the first {self.num_proxy_errors} "
                    f"architectures (first error: {self._first_error}); fix the proxy or its "
                    "inputs (data-dependent proxies need a batch)."
                ) from e
            s = float("-inf")
        finally:
            self.num_proxy_calls += 1
            self.proxy_seconds += time.perf_counter() - t0
        if not math.isfinite(s):
            s = float("-inf")
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache = {}
        self._cache[k] = s
        return s

    # -- ask -----------------------------------------------------------------------------
    def propose(self, space: ParamSpace) -> dict:
        if not self.warmed_up:
            self._warm_up(space)
        while self.queue:
            values, s = self.queue.pop(0)
            values = space.complete(values, self.inner.sample_value)  # today's space
            self.num_warm_proposed += 1
            return self._chosen(values, "proxy-warm", space, s)
        first = space.complete(self.inner.propose(space), self.inner.sample_value)
        origin = self.inner.last_origin
        if (
            self.candidates <= 1
            or origin in UNRANKED_ORIGINS
            or (self.explore and self.rng.random() < self.explore)
        ):
            return self._chosen(first, origin, space)
        cands = [(first, origin)] + [
            (space.complete(v, self.inner.sample_value), o)
            for v, o in self.inner.propose_batch(space, self.candidates - 1)
        ]
        scored = [
            (self.score(v, space), _key(space, v) not in self.seen, i)
            for i, (v, _) in enumerate(cands)
        ]
        best = max(scored, key=lambda t: (t[1], t[0], -t[2]))[
            2
        ]  # unseen first, then score, then order
        for i, (v, _) in enumerate(cands):
            if i != best:
                self.inner.release(v, space)
        self.num_ranked += 1
        return self._chosen(cands[best][0], cands[best][1], space, scored[best][0])

    def _chosen(self, values, origin, space, s=None) -> dict:
        k = _key(space, values)
        self.pending[k] = _finite(self.score(values, space) if s is None else s)
        self.seen.add(k)
        self.last_origin = origin
        return values

    def _warm_up(self, space: ParamSpace) -> None:
        drawn, keys = [], set()
        for _ in range(self.samples):
            v = self.random_draw(space)
            k = _key(space, v)
            if k not in keys:
                keys.add(k)
                drawn.append(v)
        scored = [(v, self.score(v, space)) for v in drawn]
        order = sorted(
            range(len(scored)), key=lambda i: (-scored[i][1], i)
        )  # best first, ties in draw order
        ranked = [scored[i] for i in order]
        chosen = self.inner.warm_up(ranked, space, self.top) if ranked else []
        by_key = {_key(space, v): s for v, s in ranked}
        self.queue = [[dict(v), _finite(by_key.get(_key(space, v)))] for v in chosen]
        self.warmed_up = True

    def random_draw(self, space: ParamSpace) -> dict:
        """A uniform architecture from the wrapper's own RNG (the inner controller's is not touched)."""
        return space.complete({}, lambda p, _so_far: Controller.sample_value(self, p))

    # -- tell ----------------------------------------------------------------------------
    def observe(
        self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace
    ) -> None:
        self.inner.observe(values, reward, space)
        k = _key(space, values)
        s = self.pending.pop(k) if k in self.pending else self._cache.get(k)
        self.last_score = _finite(s)

    def discard(self, values: Mapping[str, Any], space: ParamSpace) -> None:
        self.pending.pop(_key(space, values), None)
        self.inner.discard(values, space)

    # -- statistics ----------------------------------------------------------------------
    def summary_scalars(self, space: Optional[ParamSpace] = None) -> dict:
        """The inner controller's statistics plus ``proxy/last`` (score of the last observed trial;
        left out beyond float32's range, e.g. synflow's 1e60s), ``proxy/last_log10``
        (``sign * log10(1 + |score|)``), ``proxy/calls`` and ``proxy/seconds`` (this process)."""
        out = dict(self.inner.summary_scalars(space) or {})
        s = self.last_score
        if s is not None and math.isfinite(s):
            if abs(s) < 3e38:
                out["proxy/last"] = s
            out["proxy/last_log10"] = math.copysign(math.log10(1.0 + abs(s)), s)
        out["proxy/calls"] = float(self.num_proxy_calls)
        out["proxy/seconds"] = float(self.proxy_seconds)
        return out

    # -- persistence ---------------------------------------------------------------------
    def get_state(self) -> dict:
        return {
            "inner": self.inner.get_state(),
            "inner_class": type(self.inner).__name__,
            "rng": _rng_to_json(self.rng.getstate()),
            "seed": self.seed,
            "warmed_up": self.warmed_up,
            "queue": [[dict(v), s] for v, s in self.queue],
            "seen": sorted(self.seen),
            "pending": dict(self.pending),
            "last_score": self.last_score,
            "num_ranked": self.num_ranked,
            "num_warm_proposed": self.num_warm_proposed,
            "last_origin": self.last_origin,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        if "inner" not in state:
            raise ValueError(
                "ProxyAssisted.set_state: the saved state is not a proxy-assisted controller's (no 'inner' entry); "
                "resume with the settings that wrote it (no proxy=), or start a new project."
            )
        cls = state.get("inner_class")
        if cls and cls != type(self.inner).__name__:
            raise ValueError(
                f"ProxyAssisted.set_state: the saved state assists {cls}, this one "
                f"{type(self.inner).__name__}; resume with the same search class."
            )
        self.inner.set_state(state["inner"])
        self._reset_state()
        self.seed = state.get("seed", self.seed)
        if "rng" in state:
            self.rng.setstate(_rng_from_json(state["rng"]))
        self.warmed_up = bool(state.get("warmed_up", False))
        self.queue = [[dict(v), _finite(s)] for v, s in state.get("queue", [])]
        self.seen = set(state.get("seen", []))
        self.pending = {str(k): _finite(s) for k, s in state.get("pending", {}).items()}
        self.last_score = _finite(state.get("last_score"))
        self.num_ranked = int(state.get("num_ranked", 0))
        self.num_warm_proposed = int(state.get("num_warm_proposed", 0))
        self.last_origin = state.get("last_origin")

    def get_arrays(self):
        return self.inner.get_arrays()

    def set_arrays(self, arrays) -> None:
        self.inner.set_arrays(arrays)


def pretrain_policy(ctrl, ranked, space: ParamSpace, steps: int) -> None:
    """Pre-train a REINFORCE controller (``ReinforceController``) on a proxy ranking, best first.

    ``steps`` Adam steps of REINFORCE on the whole ranking with the rank as the reward: advantage
    ``1 - 2 * rank / (n - 1)`` (+1 for the proxy's best, -1 for its worst), so the policy moves
    toward what the proxy favours and the proxy's scale enters nothing. The reward baseline and the
    batch being collected are left alone (they stay those of real rewards); only the weights and
    Adam's slots change.
    """
    n = len(ranked)
    if n < 2 or steps <= 0:
        return
    trajs = [ctrl._trajectory(space, v) for v, _ in ranked]
    batch = [[t, 0.0, 1.0 - 2.0 * i / (n - 1)] for i, t in enumerate(trajs) if t]
    if not batch:
        return
    saved = (ctrl.pending, ctrl.last_batch_reward, ctrl.num_updates)
    for _ in range(steps):
        ctrl.pending = list(batch)
        ctrl.update()
    ctrl.pending, ctrl.last_batch_reward, ctrl.num_updates = saved
