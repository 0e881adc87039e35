"""Predictor-guided search (BANANAS family: White, Neiswanger & Savani, AAAI 2021), ask/tell.

Pure numpy; no keras-tuner import. Works on any :class:`ParamSpace`.

Loop (one :meth:`PredictorController.propose`):

1. **Initial design.** The first ``num_initial`` proposals are the warm starts (if any),
   then uniform random architectures.
2. **Predictor.** A model of reward given the encoded architecture, fitted on the finished,
   successful trials: ``predictor="gp"`` (default), a Gaussian process with a squared-exponential
   kernel on the encoding whose length scale and noise are chosen by (profile) marginal
   likelihood on a 4 x 3 grid (with the path encoding and ``ard=True``: one length scale for
   the one-hot part and one for the paths, a 4 x 4 x 3 grid), or ``predictor="mlp"``, an
   ensemble of ``ensemble_size`` small
   ReLU networks (numpy, all members trained together as batched matrix products, full-batch
   Adam; the ensemble spread is the uncertainty). Targets (``target="copula"``, default) are
   the normal quantiles of the rewards' ranks, so a few broken architectures (10 % accuracy)
   do not dominate the fit; ``"standard"`` just standardises them.
3. **Candidates.** ``num_candidates`` architectures: mutations (one decision changed, as
   aging evolution does; two with probability ``two_edit_prob``) of the ``num_parents``
   best finished trials (more parents when their neighbourhoods are used up), plus a
   ``random_fraction`` of uniform random ones. Anything already finished, failed, proposed and
   still pending, or discarded is excluded, so parallel workers that ask before any result
   arrives get distinct architectures and nothing is evaluated twice; with the path encoding,
   so is anything *functionally identical* to those (same active paths: ops behind a ``none``
   edge or on no input -> output route do not matter; ``skip_equivalent``). When the best
   result is ``stall_patience`` (30) or more results old, the random share and the two-edit
   probability grow (x2, x3, x4 with the age), so a search stuck in one region looks further.
4. **Acquisition.** ``"its"`` (default; independent Thompson sampling, BANANAS' choice: one
   draw from ``N(mean, std)`` per candidate), ``"ucb"`` (``mean + beta * std``) or ``"ei"``
   (expected improvement over the best). The argmax is proposed.

Encoding (:class:`Encoding`): one-hot per categorical decision (inactive -> all zeros); a
single scaled feature for long numeric option lists (> ``MAX_ONEHOT`` options) and for
continuous params (their cumulative probability); constant decisions are dropped.
``encoding="path"`` adds (for NAS-Bench-201-like cell spaces: decisions ``edge_<from>_<to>``
of kind ``op`` with a ``"none"`` option) BANANAS' path encoding, one indicator per
(input -> output route, op sequence); ``"contracted"`` adds instead what the paths compute:
per op sequence with ``skip_connect`` (the identity) dropped, whether an uncut path carries it,
on any route. ``"auto"`` (default) uses ``"contracted"`` when the space has that form: with
BANANAS' encoding the search often settled in a basin whose cells build the same chains on
other edges and never looked at the best cells (28 of 100 reported CIFAR-10 runs).

The defaults were chosen on NAS-Bench-201 with tuning seeds (see benchmarks/README.md,
"Predictor-guided search vs Optuna TPE"): the copula target and the path encoding each cut the
evaluations needed; ITS beat UCB and EI; skipping equivalent cells together with the two
length scales raised the share of CIFAR-10 runs that find one of the two best cells, and so did the
contracted paths (0.87-0.885 instead of 0.73-0.825 on 400 tuning runs); the GP is 10-30x cheaper per trial than the MLP ensemble
(whose re-fit misses the 100 ms/trial target without refitting less often).

Re-fit cost. The model is fitted lazily in ``propose`` when at least ``refit_interval(n)`` new
results arrived since the last fit: every result up to ``refit_all_until`` finished trials,
then every ``ceil(n / refit_all_until)``-th; the GP's grid search runs while n < 50 and then
only when the data grew by 20 % (otherwise one Cholesky factorisation with the kept values).

State. ``get_state`` is plain JSON: the RNG, the history (values and rewards), pending
proposals, discarded keys, counters, and which prefix of the history, which seed and which GP
hyperparameters the current model was fitted with. ``set_state`` re-fits that model from the
history (deterministic), so a restored controller makes exactly the same future proposals.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from keras_nas.controllers.base import Controller
from keras_nas.controllers.params import ParamSpace, plain
from keras_nas.controllers.predictor_candidates import CandidateMixin
from keras_nas.controllers.surrogate import (  # noqa: F401 (Encoding, spearman: public here too)
    MAX_ONEHOT,
    Encoding,
    GaussianProcess,
    MLPEnsemble,
    _active_paths,
    _cell_paths,
    _norm_cdf,
    _ranks,
    spearman,
)

PREDICTORS = ("mlp", "gp")
ACQUISITIONS = ("its", "ucb", "ei")
ENCODINGS = ("onehot", "path", "contracted", "auto")
TARGETS = ("copula", "standard")
_NORMAL = statistics.NormalDist()


class PredictorController(CandidateMixin, Controller):
    """Model-based (BANANAS-style) controller; see the module docstring.

    Args:
      seed: seed of the controller's (persisted) RNG; every numpy draw derives from it.
      num_initial: random (or warm-start) proposals before the predictor is used.
      predictor: ``"mlp"`` (ensemble of ``ensemble_size`` networks) or ``"gp"``.
      acquisition: ``"its"``, ``"ucb"`` (with ``beta``) or ``"ei"``.
      num_candidates: candidates scored per proposal.
      num_parents: the best finished trials that candidates mutate.
      random_fraction: share of uniform random candidates.
      two_edit_prob: probability that a mutation candidate changes two decisions.
      encoding: ``"onehot"``, ``"path"`` (one-hot + BANANAS' path encoding on NB201-like cells),
        ``"contracted"`` (one-hot + identity-contracted paths, see :class:`Encoding`) or
        ``"auto"`` (``"contracted"`` on NB201-like cells, else ``"onehot"``).
      refit_all_until: re-fit after every result up to this many finished trials, then
        every ``ceil(n / refit_all_until)`` results.
      hidden, epochs, learning_rate: the MLP members.
      warm_start, encoder: architectures to try first (value dicts, or objects ``encoder.encode``
        takes), as in :class:`~keras_nas.controllers.evolution.AgingEvolution`.
      sigma: Gaussian step (probability space) when mutating a continuous param.
      skip_equivalent: never propose an architecture the encoding knows to be functionally
        identical to one finished, pending or discarded (path encoding: same active paths).
      local_top: add every one-edit neighbour of the best ``local_top`` trials to the candidates.
      exploit_prob: probability that a proposal maximises the predicted mean (no exploration).
      stall_patience: when the best result is this many results old (0: never), the candidates'
        random share and two-edit probability grow (x2 after one patience, up to x4).
      ard: with the path encoding, the GP gets one length scale for the one-hot part and one for
        the paths (both chosen on the marginal-likelihood grid).
    """

    def __init__(
        self,
        seed: Optional[int] = None,
        *,
        num_initial: int = 10,
        predictor: str = "gp",
        acquisition: str = "its",
        ensemble_size: int = 5,
        num_candidates: int = 200,
        num_parents: int = 10,
        random_fraction: float = 0.1,
        two_edit_prob: float = 0.25,
        encoding: str = "auto",
        target: str = "copula",
        beta: float = 1.0,
        refit_all_until: int = 200,
        hidden: Sequence[int] = (32, 32),
        epochs: int = 200,
        learning_rate: float = 0.01,
        warm_start: Optional[Iterable] = None,
        encoder=None,
        sigma: float = 0.1,
        skip_equivalent: bool = True,
        local_top: int = 0,
        exploit_prob: float = 0.0,
        stall_patience: int = 30,
        ard: bool = True,
    ):
        super().__init__(seed)
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {list(PREDICTORS)}, got {predictor!r}.")
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"acquisition must be one of {list(ACQUISITIONS)}, got {acquisition!r}."
            )
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {list(ENCODINGS)}, got {encoding!r}.")
        for name, v, lo in (
            ("num_initial", num_initial, 1),
            ("ensemble_size", ensemble_size, 1),
            ("num_candidates", num_candidates, 1),
            ("num_parents", num_parents, 1),
            ("refit_all_until", refit_all_until, 1),
            ("epochs", epochs, 1),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}.")
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}.")
        if not 0.0 <= two_edit_prob <= 1.0:
            raise ValueError(f"two_edit_prob must be in [0, 1], got {two_edit_prob!r}.")
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}.")
        self.num_initial = num_initial
        self.predictor = predictor
        self.acquisition = acquisition
        self.ensemble_size = ensemble_size
        self.num_candidates = num_candidates
        self.num_parents = num_parents
        self.random_fraction = float(random_fraction)
        self.two_edit_prob = float(two_edit_prob)
        self.encoding = encoding
        if target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}.")
        self.target = target
        self.beta = float(beta)
        self.refit_all_until = refit_all_until
        self.hidden = tuple(int(h) for h in hidden)
        self.epochs = epochs
        self.learning_rate = float(learning_rate)
        self.warm_start = list(warm_start or [])
        self.encoder = encoder
        self.sigma = float(sigma)
        self.skip_equivalent = bool(skip_equivalent)
        self.local_top = int(local_top)
        self.exploit_prob = float(exploit_prob)
        self.stall_patience = int(stall_patience)
        self.ard = bool(ard)
        self._reset_state()

    def _reset_state(self):
        self.history: list = []  # [{"values": dict, "reward": float | None}] in observation order
        self.pending: dict = {}  # key -> {"values", "pred"} proposed, not yet observed
        self.discarded: set = set()
        self.num_proposed = 0
        self.num_initial_done = 0
        self.num_warm = 0
        self.num_fits = 0
        self.fit_n = 0  # successful results the current model was fitted on
        self.fit_seed = None
        self.gp_hparams = None  # [length-scale multiple, noise] of the current GP
        self.gp_hp_n = 0  # results the GP hyperparameters were last searched on
        self.pred_pairs: list = []  # [(predicted at proposal time, observed)] last 100
        self.last_origin: Optional[str] = None
        self._model = None
        self._model_key = None
        self._enc = None
        self._enc_key = None
        self._seen: Optional[set] = None
        self._seen_equiv: Optional[set] = (
            None  # equivalence keys of _seen (derived; see _equiv_seen)
        )
        self._ok: list = []  # successful history entries, observation order

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _key(values: Mapping[str, Any]) -> tuple:
        return tuple(
            sorted((str(k), round(v, 12) if isinstance(v, float) else v) for k, v in values.items())
        )

    def _seen_keys(self) -> set:
        if self._seen is None:
            self._seen = {self._key(h["values"]) for h in self.history}
            self._seen.update(self.pending)
            self._seen.update(self.discarded)
        return self._seen

    def _encoding(self, space: ParamSpace) -> Encoding:
        key = (space.names, tuple(p.options for p in space.params))
        if self._enc_key != key:
            cell = _cell_paths(space) is not None
            contract = self.encoding == "contracted" or (self.encoding == "auto" and cell)
            self._enc = Encoding(space, path=self.encoding == "path", contract=contract)
            self._enc_key = key
            self._model_key = None  # a new encoding invalidates the model
            self._seen_equiv = None
        return self._enc

    def _equiv_seen(self, enc: Encoding) -> Optional[set]:
        """Equivalence keys (``Encoding.equivalence_key``) of everything finished, pending or
        discarded; None when the encoding knows no equivalence or ``skip_equivalent`` is off.
        Derived from the state, so a restored controller rebuilds the same set."""
        if not self.skip_equivalent or enc.path is None:
            return None
        if self._seen_equiv is None:
            rows = [h["values"] for h in self.history] + [
                p["values"] for p in self.pending.values()
            ]
            rows += [dict(k) for k in self.discarded]
            self._seen_equiv = {enc.equivalence_key(v) for v in rows}
        return self._seen_equiv

    def _mark_seen(self, values) -> None:
        self._seen_keys().add(self._key(values))
        if self._seen_equiv is not None and self._enc is not None:
            self._seen_equiv.add(self._enc.equivalence_key(values))

    def refit_interval(self, n: int) -> int:
        return max(1, -(-n // self.refit_all_until))

    # -- ask -----------------------------------------------------------------------------------
    def propose(self, space: ParamSpace) -> dict:
        self.num_proposed += 1
        pred = None
        if self.num_warm < len(self.warm_start):
            values = self.warm_values(self.warm_start[self.num_warm], space)
            self.num_warm += 1
            self.num_initial_done += 1
            self.last_origin = "warm"
        elif not self._model_ready():
            self.num_initial_done = min(self.num_initial_done + 1, self.num_initial)
            values = self._random_unseen(space)
            self.last_origin = "random"
        else:
            values, pred = self._acquire(space)
        self._register(values, pred)
        return values

    def _model_ready(self) -> bool:
        """Past the initial design, with at least two results to fit."""
        return self.num_initial_done >= self.num_initial and len(self._ok) >= 2

    def _register(self, values, pred) -> None:
        self.pending[self._key(values)] = {"values": values, "pred": pred}
        self._mark_seen(values)

    def _random_unseen(self, space, tries=50):
        seen = self._seen_keys()
        enc = self._encoding(space)
        equiv = self._equiv_seen(enc)
        values = self.random_values(space)
        for _ in range(tries):
            if self._key(values) not in seen and (
                equiv is None or enc.equivalence_key(values) not in equiv
            ):
                break
            values = self.random_values(space)
        return values

    def _ensure_model(self, space, refit: bool = True):
        enc = self._encoding(space)
        n = len(self._ok)
        stale = self._model is None or self._model_key != (self.fit_n, self.fit_seed, id(enc))
        if refit and (self.fit_seed is None or n - self.fit_n >= self.refit_interval(n)):
            self.fit_n = n
            self.fit_seed = self.rng.getrandbits(62)
            self.num_fits += 1
            # GP length scale / noise: grid search while small, then when the data grew by 20 %.
            search = self.gp_hparams is None or n < 50 or n >= 1.2 * self.gp_hp_n
            if search:
                self.gp_hp_n = n
            self._fit(enc, search)
        elif stale:
            self._fit(enc)
        return enc

    def _fit(self, enc, search: bool = False):
        hparams = None if search or self.gp_hparams is None else self.gp_hparams
        rows = self._ok[: self.fit_n]
        X = enc.matrix([h["values"] for h in rows])
        y = np.array([h["reward"] for h in rows], dtype=np.float64)
        if (
            self.target == "copula"
        ):  # ranks -> normal quantiles: robust to heavy tails (failed-like archs)
            y = np.array([_NORMAL.inv_cdf((r + 0.5) / len(y)) for r in _ranks(y)])
        mu, sd = float(y.mean()), float(y.std())
        sd = sd if sd > 0 else 1.0
        self._y_scale = (mu, sd)
        rng = np.random.default_rng(self.fit_seed)
        if self.predictor == "gp":
            nd = max(1, len(enc.slots))
            groups = None
            if (
                self.ard and enc.path is not None
            ):  # one length scale for the one-hot part, one for the paths
                groups = [np.arange(enc.path_offset), np.arange(enc.path_offset, enc.dim)]
            if hparams is not None and len(hparams) != (3 if groups else 2):
                hparams = None
            model = GaussianProcess(groups=groups).fit(
                X, (y - mu) / sd, rng, scale=math.sqrt(nd), hparams=hparams
            )
            self.gp_hparams = [float(h) for h in model.hparams]
        else:
            model = MLPEnsemble(
                self.ensemble_size, self.hidden, self.epochs, self.learning_rate
            ).fit(X, (y - mu) / sd, rng)
        self._model = model
        self._model_key = (self.fit_n, self.fit_seed, id(enc))
        self._train_spearman = None

    def predict(self, rows: Sequence[Mapping[str, Any]], space: ParamSpace, refit: bool = False):
        """Predicted (mean, std) of value dicts with the current model, in the model's target units
        (rewards for ``target="standard"``; normal scores of the reward ranks for ``"copula"``, so
        only their order compares with rewards). ``refit=True`` first re-fits on new results when
        due (that draws from the RNG, i.e. changes future proposals)."""
        if self.fit_seed is None and not refit:
            raise ValueError(
                "No model fitted yet (fewer than two finished trials, or still in the initial design)."
            )
        enc = self._ensure_model(space, refit=refit)
        m, s = self._model.predict(enc.matrix(list(rows)))
        mu, sd = self._y_scale
        return m * sd + mu, s * sd

    def _acquire(self, space):
        scored = self._acquisition(space)
        if scored is None:
            self.last_origin = "random"
            return self._random_unseen(space), None
        cands, m, score = scored
        i = int(np.argmax(score))
        self.last_origin = "acquisition"
        mu, sd = self._y_scale
        return cands[i], float(m[i] * sd + mu)

    def propose_batch(self, space: ParamSpace, n: int) -> list:
        """The ``n`` best candidates of one acquisition pass (one candidate set, one Thompson
        draw), each registered as a proposal; before the model phase, ``n`` plain proposals."""
        n = int(n)
        warm = self.num_warm < len(self.warm_start)
        scored = None if n <= 1 or warm or not self._model_ready() else self._acquisition(space)
        if scored is None:
            return super().propose_batch(space, n)
        cands, m, score = scored
        mu, sd = self._y_scale
        out = []
        for i in np.argsort(-score, kind="stable")[:n]:
            values = cands[int(i)]
            self.num_proposed += 1
            self._register(values, float(m[i] * sd + mu))
            out.append((values, "acquisition"))
        self.last_origin = "acquisition"
        return out

    def release(self, values: Mapping[str, Any], space: ParamSpace = None) -> None:
        """Not used this time: forget the proposal (unlike :meth:`discard`, it may come back)."""
        key = self._key(values)
        if self.pending.pop(key, None) is not None:
            self._seen = self._seen_equiv = None  # derived sets: rebuilt without it

    def _acquisition(self, space):
        """(candidates, predicted means, acquisition scores), or None without candidates."""
        enc = self._ensure_model(space)
        cands = self._candidates(space)
        if not cands:
            return None
        m, s = self._model.predict(enc.matrix(cands))
        rng = np.random.default_rng(self.rng.getrandbits(62))
        if self.exploit_prob and rng.random() < self.exploit_prob:
            score = m
        elif self.acquisition == "its":
            score = m + s * rng.standard_normal(len(m))
        elif self.acquisition == "ucb":
            score = m + self.beta * s
        else:
            mu, sd = self._y_scale
            best = (max(h["reward"] for h in self._ok) - mu) / sd
            z = (m - best) / np.maximum(s, 1e-12)
            score = (m - best) * _norm_cdf(z) + s * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return cands, m, score

    def discard(self, values: Mapping[str, Any], space: ParamSpace = None) -> None:
        """The oracle dropped this proposal (it duplicated an earlier trial): never propose it again."""
        key = self._key(values)
        self.pending.pop(key, None)
        self.discarded.add(key)
        self._mark_seen(values)

    # -- tell ----------------------------------------------------------------------------------
    def observe(
        self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace = None
    ) -> None:
        values = {k: plain(v) for k, v in values.items()}
        key = self._key(values)
        pend = self.pending.pop(key, None)
        ok = reward is not None and math.isfinite(float(reward))
        entry = {"values": values, "reward": float(reward) if ok else None}
        self.history.append(entry)
        self._mark_seen(values)
        if ok:
            self._ok.append(entry)
            if pend is not None and pend.get("pred") is not None:
                self.pred_pairs.append([pend["pred"], float(reward)])
                del self.pred_pairs[:-100]

    # -- statistics ----------------------------------------------------------------------------
    @property
    def best(self) -> Optional[dict]:
        return max(self._ok, key=lambda h: h["reward"]) if self._ok else None

    def summary_scalars(self, space: ParamSpace = None) -> dict:
        """Predictor fit quality for TensorBoard: ``predictor/spearman_train`` (current model on the
        trials it was fitted on), ``predictor/spearman_new`` (predictions made at proposal time vs the
        rewards observed later, last 100), plus counts and the best reward."""
        out = {
            "finished": float(len(self.history)),
            "failed": float(len(self.history) - len(self._ok)),
            "pending": float(len(self.pending)),
            "predictor/fits": float(self.num_fits),
        }
        if self._ok:
            out["best"] = max(h["reward"] for h in self._ok)
        if len(self.pred_pairs) >= 3:
            a = np.array(self.pred_pairs)
            out["predictor/spearman_new"] = spearman(a[:, 0], a[:, 1])
        if space is not None and self.fit_seed is not None and self.fit_n >= 3:
            if self._model is None or getattr(self, "_train_spearman", None) is None:
                rows = self._ok[: self.fit_n]
                m, _ = self.predict([h["values"] for h in rows], space)
                self._train_spearman = spearman(m, [h["reward"] for h in rows])
            out["predictor/spearman_train"] = self._train_spearman
        return out

    # -- persistence -----------------------------------------------------------------------------
    _COUNTERS = (
        "num_proposed",
        "num_initial_done",
        "num_warm",
        "num_fits",
        "fit_n",
        "fit_seed",
        "gp_hparams",
        "gp_hp_n",
        "last_origin",
    )

    def get_state(self) -> dict:
        state = super().get_state()
        state.update({k: getattr(self, k) for k in self._COUNTERS})
        state["history"] = [
            {"values": dict(h["values"]), "reward": h["reward"]} for h in self.history
        ]
        state["pending"] = [
            {"values": dict(p["values"]), "pred": p["pred"]} for p in self.pending.values()
        ]
        state["discarded"] = [[list(kv) for kv in k] for k in sorted(self.discarded, key=repr)]
        state["pred_pairs"] = [list(p) for p in self.pred_pairs]
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self._reset_state()
        for k in self._COUNTERS:
            if k in state:
                setattr(self, k, state[k])
        for h in state.get("history", []):
            r = h.get("reward")
            entry = {"values": dict(h["values"]), "reward": None if r is None else float(r)}
            self.history.append(entry)
            if entry["reward"] is not None:
                self._ok.append(entry)
        for p in state.get("pending", []):
            self.pending[self._key(p["values"])] = {
                "values": dict(p["values"]),
                "pred": p.get("pred"),
            }
        self.discarded = {tuple(tuple(kv) for kv in k) for k in state.get("discarded", [])}
        self.pred_pairs = [list(p) for p in state.get("pred_pairs", [])]
        self.fit_n = min(int(self.fit_n), len(self._ok))
        # The model is re-fitted lazily from history[:fit_n] with fit_seed (deterministic).


__all__ = ["PredictorController", "Encoding", "MLPEnsemble", "GaussianProcess", "spearman"]
