"""Surrogates for predictor-guided search: architecture encodings and the predictors.

Why a module of its own: the encoding (one-hot decisions, path encodings of cells) and
the regression models (Gaussian process, MLP ensemble) are reusable by any model-based
controller and testable alone; :mod:`keras_nas.controllers.predictor` is the search loop.
"""

from __future__ import annotations

import math
import statistics
from itertools import product
from typing import Any, Mapping, Sequence

import numpy as np

from keras_nas.controllers.params import ParamSpace
from keras_nas.space.base import KIND_GENERIC, KIND_OP

MAX_ONEHOT = 16  # numeric option lists longer than this are one scaled feature
IDENTITY_OPS = ("skip_connect", "identity")  # ops that pass their input through unchanged
_NORMAL = statistics.NormalDist()


# -- encoding ----------------------------------------------------------------------------------
class Encoding:
    """Fixed-length float vector for a values dict over one :class:`ParamSpace`.

    ``path=True`` appends, for NAS-Bench-201-like cell spaces, BANANAS' path encoding: one
    indicator per (input -> output route, op sequence). ``contract=True`` replaces it by what the
    paths compute: one indicator per op sequence with the identity ops (:data:`IDENTITY_OPS`)
    dropped, set when an uncut path carries it, whatever its route. ``conv-skip-conv`` on one route
    and ``conv-conv`` on another are the same feature, and a skip path is the same identity
    wherever it runs, so cells that build the same chains along different edges look alike
    (measured on NB201: far fewer searches stuck in the wrong basin, ``benchmarks/README.md``)."""

    def __init__(self, space: ParamSpace, path: bool = False, contract: bool = False):
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
        self.contracted = None
        if path or contract:
            self.path = _cell_paths(space)
            if self.path is not None:
                self.path_offset = d
                if contract:
                    self.contracted = _contracted_vocabulary(self.path)
                    d += len(self.contracted)
                else:
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
        if self.contracted is not None:
            for seq in _active_sequences(self.path, values):
                key = tuple(o for o in seq if o not in IDENTITY_OPS)
                x[self.path_offset + self.contracted[key]] = 1.0
        elif self.path is not None:
            for j in _active_paths(self.path, values):
                x[self.path_offset + j] = 1.0
        return x

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array([self(v) for v in rows]).reshape(len(rows), self.dim)

    def equivalence_key(self, values: Mapping[str, Any]):
        """A key shared by functionally identical architectures, or None when the encoding knows
        of no such equivalence. With the path encoding: the set of active (route, op sequence)
        paths -- ops on edges that lie on no input -> output route, or behind a ``none`` edge,
        do not change the cell's function (NAS-Bench-201 has 15,625 cells, 6,466 distinct)."""
        if self.path is None:
            return None
        return ("paths",) + tuple(_active_paths(self.path, values))


def _cell_paths(space: ParamSpace):
    """Path-encoding tables for a DAG-on-edges cell space (NAS-Bench-201 style), else None."""
    edges = {}
    ops = None
    for p in space.params:
        parts = p.name.split("_")
        # Op decisions (kind "op", or generic: a plain keras-tuner space registers no kinds).
        if (
            p.kind not in (KIND_OP, KIND_GENERIC)
            or p.continuous
            or len(parts) != 3
            or parts[0] != "edge"
            or p.conditions
        ):
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
        for a, b in sorted(edges):
            if a == node:
                walk(b, route + [edges[(a, b)]])

    walk(src, [])
    if not routes or len(routes) > 64:
        return None
    offsets, size = [], 0
    for r in routes:
        offsets.append(size)
        size += len(ops) ** len(r)
    return {
        "routes": routes,
        "offsets": offsets,
        "ops": {o: i for i, o in enumerate(ops)},
        "size": size,
    }


def _contracted_vocabulary(path) -> dict:
    """Index of every op sequence without identity ops, from the empty one (a pure skip path)
    up to the longest route."""
    ops = [o for o in path["ops"] if o not in IDENTITY_OPS]
    longest = max(len(r) for r in path["routes"])
    seqs = [t for n in range(longest + 1) for t in product(ops, repeat=n)]
    return {t: i for i, t in enumerate(seqs)}


def _active_sequences(path, values):
    """The op sequence of every input -> output route that no ``none`` edge cuts."""
    ops = path["ops"]
    for r in path["routes"]:
        seq = tuple(values.get(name) for name in r)
        if all(o in ops for o in seq):
            yield seq


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
    (profile) marginal likelihood on a grid; signal variance in closed form.

    ``groups`` (a list of column-index arrays, e.g. the one-hot and the path part of an
    :class:`Encoding`) gives each group its own length scale (a grouped ARD kernel), all
    searched on the grid."""

    def __init__(self, length_scales=(0.5, 1.0, 2.0, 4.0), noises=(1e-3, 1e-2, 1e-1), groups=None):
        self.length_scales = tuple(length_scales)  # multiples of sqrt(number of decisions)
        self.noises = tuple(noises)
        self.groups = None if groups is None else [np.asarray(g) for g in groups]

    def _dists(self, A, B):
        cols = self.groups if self.groups is not None else [slice(None)]
        out = []
        for c in cols:
            a, b = A[:, c], B[:, c]
            out.append(
                np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)
            )
        return out

    def _kernel(self, Ds, lss, scale):
        e = 0.0
        for D, ls in zip(Ds, lss):
            ell = ls * scale
            e = e - D / (2 * ell * ell)
        return np.exp(e)

    def fit(self, X, y, rng=None, scale=1.0, hparams=None):
        """``hparams=(length-scale multiple(s)..., noise)`` skips the grid search (re-use of earlier ones)."""
        self.X = X
        self.scale = scale
        n = X.shape[0]
        Ds = self._dists(X, X)
        ng = len(Ds)
        if hparams is not None:
            grid = [tuple(hparams)]
        else:
            grid = [(a,) + (b,) for a in self.length_scales for b in self.noises]
            for _ in range(ng - 1):
                grid = [(a,) + g for a in self.length_scales for g in grid]
        best = None
        for hp in grid:
            *lss, eta = hp
            K = self._kernel(Ds, lss, scale)
            K[np.diag_indices(n)] += eta
            try:
                C = np.linalg.cholesky(K)
            except np.linalg.LinAlgError:
                continue
            a = _chol_solve(C, y)
            s2 = max(float(y @ a) / n, 1e-12)
            ll = -0.5 * n * math.log(s2) - np.log(np.diag(C)).sum()
            if best is None or ll > best[0]:
                best = (ll, tuple(hp), C, a, s2)
        if best is None:  # numerically singular everywhere: a very noisy fit
            return self.fit(X, y, rng, scale, (self.length_scales[0],) * ng + (1.0,))
        _, self.hparams, self.C, self.alpha, self.s2 = best
        self.eta = self.hparams[-1]
        self.ell = self.hparams[0] * scale
        return self

    def predict(self, Xs):
        Ks = self._kernel(self._dists(Xs, self.X), self.hparams[:-1], self.scale)
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
