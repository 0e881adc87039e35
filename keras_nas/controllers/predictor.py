"""Predictor-guided search (BANANAS family: White, Neiswanger & Savani, AAAI 2021), ask/tell.

Pure numpy; no keras-tuner import. Works on any :class:`ParamSpace`.

Loop (one :meth:`PredictorController.propose`):

1. **Initial design.** The first ``num_initial`` proposals are the warm starts (if any),
   then uniform random architectures.
2. **Predictor.** A model of reward given the encoded architecture, fitted on the finished,
   successful trials: ``predictor="gp"`` (default), a Gaussian process with a squared-exponential
   kernel on the encoding whose length scale and noise are chosen by (profile) marginal
   likelihood on a 4 x 3 grid, or ``predictor="mlp"``, an ensemble of ``ensemble_size`` small
   ReLU networks (numpy, all members trained together as batched matrix products, full-batch
   Adam; the ensemble spread is the uncertainty). Targets (``target="copula"``, default) are
   the normal quantiles of the rewards' ranks, so a few broken architectures (10 % accuracy)
   do not dominate the fit; ``"standard"`` just standardises them.
3. **Candidates.** ``num_candidates`` architectures: mutations (one decision changed, as
   aging evolution does; two with probability ``two_edit_prob``) of the ``num_parents``
   best finished trials (more parents when their neighbourhoods are used up), plus a
   ``random_fraction`` of uniform random ones. Anything already finished, failed, proposed and
   still pending, or discarded is excluded, so parallel workers that ask before any result
   arrives get distinct architectures and nothing is evaluated twice.
4. **Acquisition.** ``"its"`` (default; independent Thompson sampling, BANANAS' choice: one
   draw from ``N(mean, std)`` per candidate), ``"ucb"`` (``mean + beta * std``) or ``"ei"``
   (expected improvement over the best). The argmax is proposed.

Encoding (:class:`Encoding`): one-hot per categorical decision (inactive -> all zeros); a
single scaled feature for long numeric option lists (> ``MAX_ONEHOT`` options) and for
continuous params (their cumulative probability); constant decisions are dropped.
``encoding="path"`` adds (for NAS-Bench-201-like cell spaces: decisions ``edge_<from>_<to>``
of kind ``op`` with a ``"none"`` option) BANANAS' path encoding, one indicator per
(input -> output route, op sequence); ``"auto"`` (default) uses it when the space has that form.

The defaults were chosen on NAS-Bench-201 with tuning seeds (see benchmarks/README.md,
"Predictor-guided search vs Optuna TPE"): the copula target and the path encoding each cut the
evaluations needed; ITS beat UCB and EI; the GP is 10-30x cheaper per trial than the MLP ensemble
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
from keras_nas.controllers.params import Param, ParamSpace, plain
from keras_nas.space.base import KIND_GENERIC, KIND_OP

MAX_ONEHOT = 16  # numeric option lists longer than this are one scaled feature
PREDICTORS = ("mlp", "gp")
ACQUISITIONS = ("its", "ucb", "ei")
ENCODINGS = ("onehot", "path", "auto")
TARGETS = ("copula", "standard")
_NORMAL = statistics.NormalDist()


# -- encoding ----------------------------------------------------------------------------------
class Encoding:
    """Fixed-length float vector for a values dict over one :class:`ParamSpace`."""

    def __init__(self, space: ParamSpace, path: bool = False):
        self.names = space.names
        self.slots = []  # (param, offset, mode, options index map)
        d = 0
        for p in space.params:
            if p.continuous:
                self.slots.append((p, d, "scalar", None))
                d += 1
            elif len(p.options) <= 1:
                continue
            elif len(p.options) > MAX_ONEHOT and all(
                isinstance(o, (int, float)) and not isinstance(o, bool) for o in p.options
            ):
                self.slots.append((p, d, "index", {o: i for i, o in enumerate(p.options)}))
                d += 1
            else:
                self.slots.append((p, d, "onehot", {o: i for i, o in enumerate(p.options)}))
                d += len(p.options)
        self.path = None
        if path:
            self.path = _cell_paths(space)
            if self.path is not None:
                self.path_offset = d
                d += self.path["size"]
        self.dim = max(d, 1)

    def __call__(self, values: Mapping[str, Any]) -> np.ndarray:
        x = np.zeros(self.dim)
        for p, off, mode, idx in self.slots:
            if p.name not in values:
                continue
            v = values[p.name]
            if mode == "onehot":
                i = idx.get(v)
                if i is not None:
                    x[off + i] = 1.0
            elif mode == "index":
                i = idx.get(v)
                if i is not None:
                    x[off] = i / (len(idx) - 1)
            else:
                try:
                    x[off] = p.to_prob(v)
                except Exception:
                    x[off] = 0.5
        if self.path is not None:
            for j in _active_paths(self.path, values):
                x[self.path_offset + j] = 1.0
        return x

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array([self(v) for v in rows]).reshape(len(rows), self.dim)


def _cell_paths(space: ParamSpace):
    """Path-encoding tables for a DAG-on-edges cell space (NAS-Bench-201 style), else None."""
    edges = {}
    ops = None
    for p in space.params:
        parts = p.name.split("_")
        # Op decisions (kind "op", or generic: a plain keras-tuner space registers no kinds).
        if p.kind not in (KIND_OP, KIND_GENERIC) or p.continuous or len(parts) != 3 or parts[0] != "edge" or p.conditions:
            return None
        try:
            frm, to = int(parts[1]), int(parts[2])
        except ValueError:
            return None
        if frm >= to or "none" not in p.options:
            return None
        if ops is None:
            ops = tuple(o for o in p.options if o != "none")
        elif tuple(o for o in p.options if o != "none") != ops:
            return None
        edges[(frm, to)] = p.name
    if not edges or len(edges) != len(space.params):
        return None
    nodes = sorted({n for e in edges for n in e})
    src, dst = nodes[0], nodes[-1]
    routes = []

    def walk(node, route):
        if node == dst:
            routes.append(tuple(route))
            return
        for (a, b) in sorted(edges):
            if a == node:
                walk(b, route + [edges[(a, b)]])

    walk(src, [])
    if not routes or len(routes) > 64:
        return None
    offsets, size = [], 0
    for r in routes:
        offsets.append(size)
        size += len(ops) ** len(r)
    return {"routes": routes, "offsets": offsets, "ops": {o: i for i, o in enumerate(ops)}, "size": size}


def _active_paths(path, values):
    ops = path["ops"]
    k = len(ops)
    for r, off in zip(path["routes"], path["offsets"]):
        code = 0
        for name in r:
            i = ops.get(values.get(name))
            if i is None:  # "none" (or missing) cuts the path
                break
            code = code * k + i
        else:
            yield off + code


# -- predictors --------------------------------------------------------------------------------
class MLPEnsemble:
    """``size`` ReLU networks (``hidden`` widths) trained together with full-batch Adam on MSE."""

    def __init__(self, size=5, hidden=(32, 32), epochs=200, learning_rate=0.01, weight_decay=1e-4):
        self.size = size
        self.hidden = tuple(hidden)
        self.epochs = epochs
        self.lr = learning_rate
        self.wd = weight_decay

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        E = self.size
        dims = (X.shape[1],) + self.hidden + (1,)
        params = []
        for a, b in zip(dims[:-1], dims[1:]):
            params.append(rng.normal(0.0, math.sqrt(2.0 / a), size=(E, a, b)))
            params.append(np.zeros((E, 1, b)))
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        Xb = np.broadcast_to(X, (E,) + X.shape)
        yb = y[None, :, None]
        n = X.shape[0]
        b1, b2 = 0.9, 0.999
        L = len(params) // 2
        for t in range(1, self.epochs + 1):
            acts = [Xb]
            h = Xb
            for li in range(L):
                h = h @ params[2 * li] + params[2 * li + 1]
                if li < L - 1:
                    h = np.maximum(h, 0.0)
                acts.append(h)
            g = (2.0 / n) * (h - yb)
            grads = [None] * len(params)
            for li in range(L - 1, -1, -1):
                a = acts[li]
                grads[2 * li] = a.transpose(0, 2, 1) @ g + self.wd * params[2 * li]
                grads[2 * li + 1] = g.sum(axis=1, keepdims=True)
                if li > 0:
                    g = (g @ params[2 * li].transpose(0, 2, 1)) * (acts[li] > 0)
            lr_t = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            for p, gr, mm, vv in zip(params, grads, m, v):
                mm *= b1
                mm += (1 - b1) * gr
                vv *= b2
                vv += (1 - b2) * gr * gr
                p -= lr_t * mm / (np.sqrt(vv) + 1e-8)
        self.params = params
        return self

    def predict(self, X: np.ndarray):
        h = np.broadcast_to(X, (self.size,) + X.shape)
        L = len(self.params) // 2
        for li in range(L):
            h = h @ self.params[2 * li] + self.params[2 * li + 1]
            if li < L - 1:
                h = np.maximum(h, 0.0)
        preds = h[:, :, 0]
        return preds.mean(axis=0), preds.std(axis=0)


class GaussianProcess:
    """GP regression, squared-exponential kernel on the encoding; length scale and noise by
    (profile) marginal likelihood on a grid; signal variance in closed form."""

    def __init__(self, length_scales=(0.5, 1.0, 2.0, 4.0), noises=(1e-3, 1e-2, 1e-1)):
        self.length_scales = tuple(length_scales)  # multiples of sqrt(number of decisions)
        self.noises = tuple(noises)

    def fit(self, X, y, rng=None, scale=1.0, hparams=None):
        """``hparams=(length-scale multiple, noise)`` skips the grid search (re-use of earlier ones)."""
        self.X = X
        n = X.shape[0]
        sq = (X * X).sum(1)
        D = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0)
        grid = [tuple(hparams)] if hparams is not None else [(a, b) for a in self.length_scales for b in self.noises]
        best = None
        for ls, eta in grid:
            ell = ls * scale
            K = np.exp(-D / (2 * ell * ell))
            K[np.diag_indices(n)] += eta
            try:
                C = np.linalg.cholesky(K)
            except np.linalg.LinAlgError:
                continue
            a = _chol_solve(C, y)
            s2 = max(float(y @ a) / n, 1e-12)
            ll = -0.5 * n * math.log(s2) - np.log(np.diag(C)).sum()
            if best is None or ll > best[0]:
                best = (ll, (ls, eta), ell, C, a, s2)
        if best is None:  # numerically singular everywhere: a very noisy fit
            return self.fit(X, y, rng, scale, (self.length_scales[0], 1.0))
        _, self.hparams, self.ell, self.C, self.alpha, self.s2 = best
        self.eta = self.hparams[1]
        return self

    def predict(self, Xs):
        sq = (Xs * Xs).sum(1)
        sqx = (self.X * self.X).sum(1)
        D = np.maximum(sq[:, None] + sqx[None, :] - 2 * Xs @ self.X.T, 0.0)
        Ks = np.exp(-D / (2 * self.ell * self.ell))
        mean = Ks @ self.alpha
        V = _tri_solve(self.C, Ks.T)
        var = self.s2 * np.maximum(1.0 + self.eta - (V * V).sum(0), 1e-12)
        return mean, np.sqrt(var)


def _tri_solve(C, B):
    try:
        from scipy.linalg import solve_triangular

        return solve_triangular(C, B, lower=True)
    except ImportError:  # pragma: no cover - scipy is optional
        return np.linalg.solve(C, B)


def _chol_solve(C, y):
    z = _tri_solve(C, y)
    try:
        from scipy.linalg import solve_triangular

        return solve_triangular(C.T, z, lower=False)
    except ImportError:  # pragma: no cover
        return np.linalg.solve(C.T, z)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when undefined."""
    a, b = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(x):
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    xs = x[order]
    i = 0
    while i < len(xs):  # average ties
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        if j > i:
            r[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return r


def _norm_cdf(z):
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


# -- the controller ------------------------------------------------------------------------
class PredictorController(Controller):
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
      encoding: ``"onehot"``, ``"path"`` (one-hot + path encoding on NB201-like cells) or ``"auto"``.
      refit_all_until: re-fit after every result up to this many finished trials, then
        every ``ceil(n / refit_all_until)`` results.
      hidden, epochs, learning_rate: the MLP members.
      warm_start, encoder: architectures to try first (value dicts, or objects ``encoder.encode``
        takes), as in :class:`~keras_nas.controllers.evolution.AgingEvolution`.
      sigma: Gaussian step (probability space) when mutating a continuous param.
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
    ):
        super().__init__(seed)
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {list(PREDICTORS)}, got {predictor!r}.")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {list(ACQUISITIONS)}, got {acquisition!r}.")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {list(ENCODINGS)}, got {encoding!r}.")
        for name, v, lo in (
            ("num_initial", num_initial, 1), ("ensemble_size", ensemble_size, 1), ("num_candidates", num_candidates, 1),
            ("num_parents", num_parents, 1), ("refit_all_until", refit_all_until, 1), ("epochs", epochs, 1),
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
        self._ok: list = []  # successful history entries, observation order

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _key(values: Mapping[str, Any]) -> tuple:
        return tuple(sorted((str(k), round(v, 12) if isinstance(v, float) else v) for k, v in values.items()))

    def _seen_keys(self) -> set:
        if self._seen is None:
            self._seen = {self._key(h["values"]) for h in self.history}
            self._seen.update(self.pending)
            self._seen.update(self.discarded)
        return self._seen

    def _encoding(self, space: ParamSpace) -> Encoding:
        key = (space.names, tuple(p.options for p in space.params))
        if self._enc_key != key:
            path = self.encoding == "path" or (self.encoding == "auto" and _cell_paths(space) is not None)
            self._enc = Encoding(space, path=path)
            self._enc_key = key
            self._model_key = None  # a new encoding invalidates the model
        return self._enc

    def refit_interval(self, n: int) -> int:
        return max(1, -(-n // self.refit_all_until))

    # -- ask -----------------------------------------------------------------------------------
    def propose(self, space: ParamSpace) -> dict:
        self.num_proposed += 1
        pred = None
        if self.num_warm < len(self.warm_start):
            values = self._warm_values(self.warm_start[self.num_warm], space)
            self.num_warm += 1
            self.num_initial_done += 1
            self.last_origin = "warm"
        elif self.num_initial_done < self.num_initial or len(self._ok) < 2:
            self.num_initial_done = min(self.num_initial_done + 1, self.num_initial)
            values = self._random_unseen(space)
            self.last_origin = "random"
        else:
            values, pred = self._acquire(space)
        key = self._key(values)
        self.pending[key] = {"values": values, "pred": pred}
        self._seen_keys().add(key)
        return values

    def _random_unseen(self, space, tries=50):
        seen = self._seen_keys()
        values = self.random_values(space)
        for _ in range(tries):
            if self._key(values) not in seen:
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
        if self.target == "copula":  # ranks -> normal quantiles: robust to heavy tails (failed-like archs)
            y = np.array([_NORMAL.inv_cdf((r + 0.5) / len(y)) for r in _ranks(y)])
        mu, sd = float(y.mean()), float(y.std())
        sd = sd if sd > 0 else 1.0
        self._y_scale = (mu, sd)
        rng = np.random.default_rng(self.fit_seed)
        if self.predictor == "gp":
            nd = max(1, len(enc.slots))
            model = GaussianProcess().fit(X, (y - mu) / sd, rng, scale=math.sqrt(nd), hparams=hparams)
            self.gp_hparams = [float(model.hparams[0]), float(model.hparams[1])]
        else:
            model = MLPEnsemble(self.ensemble_size, self.hidden, self.epochs, self.learning_rate).fit(
                X, (y - mu) / sd, rng
            )
        self._model = model
        self._model_key = (self.fit_n, self.fit_seed, id(enc))
        self._train_spearman = None

    def predict(self, rows: Sequence[Mapping[str, Any]], space: ParamSpace, refit: bool = False):
        """Predicted (mean, std) of value dicts with the current model, in the model's target units
        (rewards for ``target="standard"``; normal scores of the reward ranks for ``"copula"``, so
        only their order compares with rewards). ``refit=True`` first re-fits on new results when
        due (that draws from the RNG, i.e. changes future proposals)."""
        if self.fit_seed is None and not refit:
            raise ValueError("No model fitted yet (fewer than two finished trials, or still in the initial design).")
        enc = self._ensure_model(space, refit=refit)
        m, s = self._model.predict(enc.matrix(list(rows)))
        mu, sd = self._y_scale
        return m * sd + mu, s * sd

    def _acquire(self, space):
        enc = self._ensure_model(space)
        cands = self._candidates(space)
        if not cands:
            self.last_origin = "random"
            return self._random_unseen(space), None
        m, s = self._model.predict(enc.matrix(cands))
        rng = np.random.default_rng(self.rng.getrandbits(62))
        if self.acquisition == "its":
            score = m + s * rng.standard_normal(len(m))
        elif self.acquisition == "ucb":
            score = m + self.beta * s
        else:
            mu, sd = self._y_scale
            best = (max(h["reward"] for h in self._ok) - mu) / sd
            z = (m - best) / np.maximum(s, 1e-12)
            score = (m - best) * _norm_cdf(z) + s * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        i = int(np.argmax(score))
        self.last_origin = "acquisition"
        mu, sd = self._y_scale
        return cands[i], float(m[i] * sd + mu)

    def _candidates(self, space) -> list:
        seen = self._seen_keys()
        ranked = sorted(self._ok, key=lambda h: -h["reward"])
        k = min(self.num_parents, len(ranked))
        simple = not any(p.conditions for p in space.params)  # no conditional params: mutate in place
        parents = [space.complete(h["values"], self.sample_value) for h in ranked[:k]]
        mutable = [p for p in space.params if p.continuous or len(p.options) > 1]
        n_random = int(round(self.num_candidates * self.random_fraction))
        n_mut = self.num_candidates - n_random
        out, keys = [], set()

        def add(v):
            key = self._key(v)
            if key not in seen and key not in keys:
                keys.add(key)
                out.append(v)
                return True
            return False

        misses = 0
        while len(out) < n_mut and parents and mutable:
            child = self._mutate(parents[self.rng.randrange(len(parents))], space, mutable, simple)
            if self.rng.random() < self.two_edit_prob:
                child = self._mutate(child, space, mutable, simple)
            if add(child):
                continue
            misses += 1
            if misses >= n_mut:  # the best parents' neighbourhoods are (nearly) exhausted: widen
                if k >= len(ranked):
                    break
                k2 = min(2 * k, len(ranked))
                parents += [space.complete(h["values"], self.sample_value) for h in ranked[k:k2]]
                k, misses = k2, 0
        tries = 0
        while len(out) < n_mut + n_random and tries < 4 * (n_random + 1):
            tries += 1
            add(self.random_values(space))
        return out

    def _mutate(self, values, space, mutable, simple):
        """``values`` with one decision (active in it) changed to a different value."""
        active = [p for p in mutable if p.name in values]
        if not active:
            return dict(values)
        p = active[self.rng.randrange(len(active))]
        child = dict(values)
        child[p.name] = self._different_value(p, values[p.name])
        return child if simple else space.complete(child, self.sample_value)

    def _different_value(self, p: Param, current):
        if not p.continuous:
            others = [o for o in p.options if o != current]
            return others[self.rng.randrange(len(others))]
        try:
            p0 = p.to_prob(current)
        except Exception:
            p0 = self.rng.random()
        q = abs(p0 + self.rng.gauss(0.0, self.sigma)) % 2.0
        q = 2.0 - q if q > 1.0 else q
        return p.from_prob(q)

    def _warm_values(self, item, space: ParamSpace) -> dict:
        if isinstance(item, Mapping):
            given = dict(item)
        else:
            if self.encoder is None or not hasattr(self.encoder, "encode"):
                raise ValueError(
                    f"warm_start item {item!r:.80} is not a value dict; pass encoder=<SearchSpace> so it can be "
                    "encoded, or give value dicts."
                )
            given = self.encoder.encode(item)
        for name, v in given.items():
            if name in space and not ParamSpace.is_valid(space[name], v):
                raise ValueError(f"warm_start value {name}={v!r} is not valid for the search space.")
        return space.complete(given, self.sample_value)

    def discard(self, values: Mapping[str, Any], space: ParamSpace = None) -> None:
        """The oracle dropped this proposal (it duplicated an earlier trial): never propose it again."""
        key = self._key(values)
        self.pending.pop(key, None)
        self.discarded.add(key)
        self._seen_keys().add(key)

    # -- tell ----------------------------------------------------------------------------------
    def observe(self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace = None) -> None:
        values = {k: plain(v) for k, v in values.items()}
        key = self._key(values)
        pend = self.pending.pop(key, None)
        ok = reward is not None and math.isfinite(float(reward))
        entry = {"values": values, "reward": float(reward) if ok else None}
        self.history.append(entry)
        self._seen_keys().add(key)
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
    _COUNTERS = ("num_proposed", "num_initial_done", "num_warm", "num_fits", "fit_n", "fit_seed", "gp_hparams", "gp_hp_n",
                 "last_origin")

    def get_state(self) -> dict:
        state = super().get_state()
        state.update({k: getattr(self, k) for k in self._COUNTERS})
        state["history"] = [{"values": dict(h["values"]), "reward": h["reward"]} for h in self.history]
        state["pending"] = [{"values": dict(p["values"]), "pred": p["pred"]} for p in self.pending.values()]
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
            self.pending[self._key(p["values"])] = {"values": dict(p["values"]), "pred": p.get("pred")}
        self.discarded = {tuple(tuple(kv) for kv in k) for k in state.get("discarded", [])}
        self.pred_pairs = [list(p) for p in state.get("pred_pairs", [])]
        self.fit_n = min(int(self.fit_n), len(self._ok))
        # The model is re-fitted lazily from history[:fit_n] with fit_seed (deterministic).


__all__ = ["PredictorController", "Encoding", "MLPEnsemble", "GaussianProcess", "spearman"]
