"""RNN controller trained with REINFORCE (Zoph & Le 2017; NASNet, Zoph et al. 2018; ENAS, Pham et al. 2018).

An LSTM emits one softmax per *active* decision of the :class:`ParamSpace`, in order. Each
decision has its own output head and option embedding; the embedding of the option just chosen is
the next step's input (the first step reads a learned ``g_emb``). A continuous param (Float without
step; Int/stepped Float of over ``MAX_OPTIONS`` values) is ``bins`` equal-probability intervals of its
scale (linear/log): the policy picks one, the value is drawn uniformly inside it. Inactive conditional params
are skipped (nothing is fed). Heads and embeddings are created lazily, per param name, the first
time a param is seen, so the space may grow between calls.

Training: REINFORCE with an exponential-moving-average baseline and an entropy bonus, Adam,
one update per ``batch_size`` finished trials (so parallel workers all contribute to a batch).
For each reward in arrival order the baseline is updated first, then the advantage
``reward - baseline`` is taken (ENAS and NAS-Bench-201 order); the EMA is bias-corrected
(NAS-Bench-201's ``ExponentialMovingAverage``), so the first reward gives advantage 0.
Log-probabilities are recomputed under the current policy from the *values* reported to
:meth:`observe` (not from a cache of the proposal), so seeded or edited trials also train it.

Failed trials (``reward is None``): with ``failed_reward=None`` (the default) they are skipped:
no update, no baseline change (a crash says nothing about the architecture's accuracy, and a
made-up penalty would skew the baseline). With a number, that number is used as the (raw,
pre-transform) reward of the failed proposal.

Reproducibility: probabilities are computed with TensorFlow, but each choice is drawn from the
controller's own persisted ``self.rng`` (inverse CDF on a ``random()`` draw) and lazily created
weights are initialised from a numpy generator seeded from ``self.rng``. ``get_state`` (JSON)
plus ``get_arrays`` (weights and Adam slots) therefore restore a controller that proposes the
same next values and performs the same updates.

Speed: the per-step sampler and the batched gradient are ``tf.function``\\ s with shape-free
input signatures (traced once each, whatever the space or batch); Adam runs in numpy.

Not implemented: ENAS's pointer attention over previous nodes' hidden states for ``KIND_INPUT``
decisions; input decisions get an ordinary per-decision head like every other decision.

``policy="factorized"`` drops the LSTM: each decision's logits are a free vector (its head
bias), the NAS-Bench-201 REINFORCE policy (one categorical per edge, init ``1e-3 * randn``).

Modules: this one proposes and observes; the policy update is
:mod:`~keras_nas.controllers.reinforce_update`, persistence
:mod:`~keras_nas.controllers.reinforce_state`, the traced functions
:mod:`~keras_nas.controllers.reinforce_tf`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from keras_nas.controllers.base import Controller
from keras_nas.controllers.params import Param, ParamSpace
from keras_nas.controllers.reinforce_state import ReinforceStateMixin
from keras_nas.controllers.reinforce_tf import make_fns as _make_fns
from keras_nas.controllers.reinforce_update import ReinforceUpdateMixin
from keras_nas.space.base import KIND_OP

_TF_CACHE: dict = {}


def _tf():
    import tensorflow as tf

    return tf


def _transforms():
    return {
        None: None,
        "identity": None,
        "cube": lambda r: r**3,  # NAS-RL reimplementations cube the validation accuracy
        "percent": lambda r: r / 100.0,
    }


class ReinforceController(ReinforceStateMixin, ReinforceUpdateMixin, Controller):
    """LSTM (or factorized) policy over a :class:`ParamSpace`, trained by REINFORCE.

    Defaults (chosen by measurement on NAS-Bench-201 CIFAR-10, ~100-trial budgets; see
    ``docs/search.md`` and ``benchmarks/README.md``): Adam lr 0.01 (NATS-Bench), EMA baseline 0.9
    and one update per finished trial (NB201's ``reinforce.py``), ENAS's logit bound
    ``tanh_constant=1.1`` (without it the policy collapses onto one cell within ~20 trials at this
    learning rate). On seeds 1000-1059 they gave 93.91 (test accuracy of the chosen cell) against
    93.79 for the earlier NASNet/ENAS defaults (lr 0.0035, baseline 0.95, batch 10, no bound) and
    93.75 for random search. With several parallel workers raise ``batch_size`` so that a batch
    holds one trial per worker.

    Args:
        seed: seed of ``self.rng`` (draws and weight initialisation).
        units: LSTM units (NASNet 100, ENAS 64); also the embedding size.
        num_layers: stacked LSTM layers (NASNet 1, NAS-RL 2).
        learning_rate: Adam learning rate (default 0.01 as NATS REINFORCE; ENAS 0.0035; NAS-RL 6e-4).
        baseline_decay: EMA decay of the reward baseline (default 0.9 as NB201; NASNet 0.95, ENAS 0.99).
        entropy_weight: entropy bonus weight (NASNet 1e-5, ENAS 1e-4).
        batch_size: finished trials per update (default 1 as NB201; NASNet used 20 architectures
            per minibatch).
        temperature: logits are divided by it (ENAS 5.0 in the macro search); None = 1.
        tanh_constant: if set, logits become ``c * tanh(logits)`` (default 1.1, ENAS micro; 1.5
            macro; None: unbounded).
        op_tanh_reduce: for ``KIND_OP`` decisions ``c`` is divided by this (ENAS 2.5).
        init_range: weights start uniform in ``[-init_range, init_range]`` (NASNet 0.1).
        bins: number of equal-probability intervals of a continuous param (the value is drawn
            uniformly inside the chosen one).
        failed_reward: None (skip failed trials) or the raw reward a failed trial gets.
        reward_transform: None, ``"cube"``, ``"percent"`` (divide by 100) or a callable
            applied to every reward before the baseline (a callable is not part of the state).
        policy: ``"lstm"`` or ``"factorized"`` (independent categorical per decision).
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        pretrain_steps: Adam steps of the pre-training in a proxy-assisted search's :meth:`warm_up`.
        snapshot_every: :meth:`get_arrays` (the weights and Adam slots, ~1 MB for the default LSTM,
            saved to ``oracle_arrays.npz``) returns a snapshot taken every this many updates; the
            batches applied since are journalled in :meth:`get_state` (~100 bytes per trial) and
            replayed by :meth:`set_arrays`, so the npz is rewritten once per ``snapshot_every``
            updates instead of after every trial, and a restore is still exact.
    """

    def __init__(
        self,
        seed: Optional[int] = None,
        units: int = 100,
        num_layers: int = 1,
        learning_rate: float = 0.01,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-5,
        batch_size: int = 1,
        temperature: Optional[float] = None,
        tanh_constant: Optional[float] = 1.1,
        op_tanh_reduce: float = 2.5,
        init_range: float = 0.1,
        bins: int = 10,
        failed_reward: Optional[float] = None,
        reward_transform: Union[None, str, Callable[[float], float]] = None,
        policy: str = "lstm",
        grad_clip: Optional[float] = None,
        snapshot_every: int = 20,
        adam_beta_1: float = 0.9,
        adam_beta_2: float = 0.999,
        adam_epsilon: float = 1e-7,
        pretrain_steps: int = 20,
    ):
        super().__init__(seed)
        if policy not in ("lstm", "factorized"):
            raise ValueError(
                f"ReinforceController: policy must be 'lstm' or 'factorized', got {policy!r}."
            )
        for name, v, lo in (("batch_size", batch_size, 1), ("pretrain_steps", pretrain_steps, 0)):
            if int(v) < lo:
                raise ValueError(f"ReinforceController: {name} must be >= {lo}, got {v!r}.")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(
                f"ReinforceController: baseline_decay must be in [0, 1), got {baseline_decay!r}."
            )
        if isinstance(reward_transform, str) or reward_transform is None:
            if reward_transform not in _transforms():
                raise ValueError(
                    f"ReinforceController: unknown reward_transform {reward_transform!r}; use None, 'cube', "
                    "'percent' or a callable."
                )
            self._transform = _transforms()[reward_transform]
        elif callable(reward_transform):
            self._transform = reward_transform
        else:
            raise ValueError(
                "ReinforceController: reward_transform must be None, a name or a callable."
            )
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(
                f"ReinforceController: units must be a positive integer, got {units!r}."
            )
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        self.batch_size = int(batch_size)
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.op_tanh_reduce = float(op_tanh_reduce)
        self.init_range = float(init_range)
        self.bins = int(bins)
        self.failed_reward = failed_reward
        self.policy = policy
        self.grad_clip = grad_clip
        if int(snapshot_every) < 1:
            raise ValueError(
                f"ReinforceController: snapshot_every must be >= 1, got {snapshot_every!r}."
            )
        self.snapshot_every = int(snapshot_every)
        self.adam = (float(adam_beta_1), float(adam_beta_2), float(adam_epsilon))
        self.pretrain_steps = int(pretrain_steps)
        # learnt state
        self.vocab: list = []  # [name, n_options, kind], registration order
        self._index: dict = {}
        self.weights: dict = {}  # name -> float32 array
        self.slots_m: dict = {}
        self.slots_v: dict = {}
        self.adam_step = 0
        self.num_updates = 0
        self.num_observed = 0
        self.num_failed = 0
        self.bl_num = 0.0
        self.bl_den = 0.0
        self.pending: list = []  # [[[vocab index, action], ...], raw reward, advantage]
        self.last_batch_reward: Optional[float] = None  # mean raw reward of the last update's batch
        self._bins_cache: dict = {}
        self._tensors: dict = {}
        self._arrays_version = (
            0  # bumped whenever get_arrays' snapshot changes (see arrays_version)
        )
        self.journal: list = []  # batches applied since the snapshot get_arrays returns
        self._snap_adam_step = 0  # adam_step at that snapshot
        self._snap: Optional[dict] = None  # packed snapshot (built lazily)
        self._built_hint = False  # set_state: the saved controller had built its weights
        self.use_tf_sampler = (
            False  # True: sample with the traced TensorFlow step (the reference path)
        )

    # -- vocabulary / weights ------------------------------------------------------------
    def options_of(self, p: Param) -> tuple:
        if not p.continuous:
            return p.options
        hit = self._bins_cache.get(p.name)
        if hit is None or hit[0] is not p:
            hit = self._bins_cache[p.name] = (p, p.bins(self.bins))
        return hit[1]

    def _intervals(
        self, p: Param
    ) -> bool:  # False: discrete options (or fewer distinct values than bins)
        return p.continuous and len(self.options_of(p)) == self.bins

    def _init_rng(self) -> np.random.Generator:
        return np.random.default_rng(self.rng.getrandbits(63))

    def _uniform(self, g, shape):
        return g.uniform(-self.init_range, self.init_range, size=shape).astype(np.float32)

    def _build(self):
        if "g_emb" in self.weights:
            return
        g = self._init_rng()
        u = self.units
        new = {"g_emb": self._uniform(g, (u,))}
        if self.policy == "lstm":
            for layer in range(self.num_layers):
                new[f"lstm/kernel_{layer}"] = self._uniform(g, (2 * u, 4 * u))
                new[f"lstm/bias_{layer}"] = np.zeros((4 * u,), np.float32)
        self._add_weights(new)

    def _add_weights(self, new: dict):
        self._tensors = {}
        for k, w in new.items():
            self.weights[k] = w
            self.slots_m[k] = np.zeros_like(w)
            self.slots_v[k] = np.zeros_like(w)
        self._snapshot()

    def _register(self, p: Param) -> int:
        k = self._index.get(p.name)
        n = len(self.options_of(p))
        if k is not None:
            if self.vocab[k][1] != n:
                raise ValueError(
                    f"ReinforceController: param {p.name!r} had {self.vocab[k][1]} options and now has {n}; "
                    "a param's options cannot change during a search (rename it or start a new controller)."
                )
            return k
        self._build()
        k = len(self.vocab)
        self.vocab.append([p.name, n, p.kind])
        self._index[p.name] = k
        g = self._init_rng()
        u = self.units
        if self.policy == "lstm":
            b = self._uniform(g, (n,))
        else:
            b = (1e-3 * g.standard_normal(n)).astype(np.float32)
        self._add_weights(
            {
                f"p{k}/emb": self._uniform(g, (n, u)),
                f"p{k}/W": self._uniform(g, (u, n)),
                f"p{k}/b": b,
            }
        )
        return k

    def _lstm_keys(self):
        if self.policy != "lstm":
            return []
        return [
            k
            for layer in range(self.num_layers)
            for k in (f"lstm/kernel_{layer}", f"lstm/bias_{layer}")
        ]

    def _shape_consts(self, kind: str):
        temp = float(self.temperature) if self.temperature else 1.0
        c = float(self.tanh_constant) if self.tanh_constant else 0.0
        if c and kind == KIND_OP:
            c = c / self.op_tanh_reduce
        return temp, c

    # -- TF functions --------------------------------------------------------------------
    def _fns(self, length: int = 0):
        """(sampler step, gradient fn for sequences of ``length`` steps); traced once per length
        (the gradient graph is unrolled: much faster than a while loop for these short sequences)."""
        key = (self.policy, self.num_layers, length)
        if key not in _TF_CACHE:
            step_fn, grad_fn = _make_fns(self.policy, self.num_layers, length)
            _TF_CACHE[key] = (
                step_fn.get_concrete_function(),
                grad_fn.get_concrete_function() if length else None,
            )
        return _TF_CACHE[key]

    # -- ask -----------------------------------------------------------------------------
    def _tensor(self, key):
        t = self._tensors.get(key)
        if t is None:
            t = self._tensors[key] = _tf().constant(self.weights[key])
        return t

    def _step(self, k: int, x, h, c):
        """Probabilities of param ``k`` given input ``x`` and LSTM state; returns (probs, h, c).
        ``x`` is ``(1, units)``, ``h``/``c`` are ``(num_layers, 1, units)`` float32 numpy arrays."""
        if not self.use_tf_sampler:
            return self._step_np(k, x, h, c)
        tf = _tf()
        probs, h, c = self._step_tf(k, tf.constant(x), tf.constant(h), tf.constant(c))
        return probs, np.asarray(h), np.asarray(c)

    def _step_np(self, k: int, x, h, c):
        """The sampler step in numpy float32 (the default): the same math as the traced
        ``step_fn``, without TensorFlow's per-call dispatch (~0.5 ms idle, several ms on a loaded
        machine, six or more calls per proposal). Agrees with it to float32 round-off."""
        temp, tc = self._shape_consts(self.vocab[k][2])
        if self.policy == "lstm":
            w = self.weights
            inp, hs, cs = x, [], []
            for layer in range(self.num_layers):
                z = (
                    np.concatenate([inp, h[layer]], axis=1) @ w[f"lstm/kernel_{layer}"]
                    + w[f"lstm/bias_{layer}"]
                )
                i, f, g, o = np.split(z, 4, axis=1)
                cl = _sigmoid(f) * c[layer] + _sigmoid(i) * np.tanh(g)
                inp = _sigmoid(o) * np.tanh(cl)
                hs.append(inp)
                cs.append(cl)
            logits = (inp @ w[f"p{k}/W"])[0] + w[f"p{k}/b"]
            h, c = np.stack(hs), np.stack(cs)
        else:
            logits = self.weights[f"p{k}/b"]
        logits = logits / np.float32(temp)
        if tc > 0:
            logits = np.float32(tc) * np.tanh(logits)
        e = np.exp(logits - logits.max())
        return (e / e.sum()).astype(np.float32), h, c

    def _step_tf(self, k: int, x, h, c):
        """The reference sampler step (TensorFlow, ``step_fn``); tensors in, (probs, h, c) out."""
        step_fn, _ = self._fns()
        temp, tc = self._shape_consts(self.vocab[k][2])
        if self.policy == "lstm":
            lstm = [self._tensor(key) for key in self._lstm_keys()]
            probs, h, c = step_fn(
                lstm,
                x,
                h,
                c,
                self._tensor(f"p{k}/W"),
                self._tensor(f"p{k}/b"),
                self._const(temp),
                self._const(tc),
            )
        else:
            probs = step_fn(self._tensor(f"p{k}/b"), self._const(temp), self._const(tc))
        return probs.numpy(), h, c

    def _const(self, v: float):
        t = self._tensors.get(("c", v))
        if t is None:
            t = self._tensors[("c", v)] = _tf().constant(v, dtype="float32")
        return t

    def _start(self):
        x = self.weights["g_emb"][None, :]
        h = np.zeros((self.num_layers, 1, self.units), np.float32)
        return x, h, h

    def propose(self, space: ParamSpace) -> dict:
        self._build()
        st = list(self._start())

        def fill(p: Param, _so_far):
            k = self._register(p)
            probs, st[1], st[2] = self._step(k, *st)
            a = _inverse_cdf(probs, self.rng.random())
            st[0] = self.weights[f"p{k}/emb"][a][None, :]
            if self._intervals(p):  # a uniform draw inside the chosen interval
                return p.from_prob((a + self.rng.random()) / self.bins)
            return self.options_of(p)[a]

        return space.complete({}, fill)

    def probabilities(self, space: ParamSpace, values: Mapping[str, Any]) -> dict:
        """Per active param, the policy's probabilities (over ``options_of(param)``) when the
        earlier decisions took ``values`` (teacher forcing). Registers unseen params."""
        self._build()
        traj = self._trajectory(space, values)
        if traj is None:
            raise ValueError(
                "ReinforceController.probabilities: values hold an option outside the space."
            )
        x, h, c = self._start()
        out = {}
        for k, a in traj:
            probs, h, c = self._step(k, x, h, c)
            out[self.vocab[k][0]] = probs.astype(np.float64)
            x = self.weights[f"p{k}/emb"][a][None, :]
        return out

    # -- tell ----------------------------------------------------------------------------
    def _trajectory(self, space: ParamSpace, values: Mapping[str, Any]):
        traj = []
        for p in space.params:
            if p.name not in values or not p.is_active(values):
                continue
            k = self._register(p)
            opts = self.options_of(p)
            v = values[p.name]
            if self._intervals(p):
                a = min(max(int(p.to_prob(v) * self.bins), 0), self.bins - 1)
            elif v in opts:
                a = opts.index(v)
            elif p.continuous:
                a = p.nearest_bin(v, self.bins)
            else:
                return None
            traj.append([k, int(a)])
        return traj

    def observe(
        self, values: Mapping[str, Any], reward: Optional[float], space: ParamSpace
    ) -> None:
        self.num_observed += 1
        if reward is None or not math.isfinite(float(reward)):
            self.num_failed += 1
            if self.failed_reward is None:
                return
            reward = self.failed_reward
        self._build()
        traj = self._trajectory(space, values)
        if traj is None:
            warnings.warn(
                "ReinforceController.observe: a value is not an option of its param; the trial is not used "
                "for training.",
                stacklevel=2,
            )
            return
        if not traj:
            return
        r = float(reward)
        if self._transform is not None:
            r = float(self._transform(r))
        d = self.baseline_decay
        self.bl_num = d * self.bl_num + (1.0 - d) * r
        self.bl_den = d * self.bl_den + (1.0 - d)
        adv = r - self.bl_num / self.bl_den
        self.pending.append([traj, float(reward), adv])
        if len(self.pending) >= self.batch_size:
            self.update()

    def warm_up(self, ranked, space: ParamSpace, top: Optional[int] = None) -> list:
        """Proxy warm-up: :func:`~keras_nas.controllers.proxy_assisted.pretrain_policy`, then the best ``top`` first."""
        from keras_nas.controllers.proxy_assisted import pretrain_policy

        pretrain_policy(self, ranked, space, self.pretrain_steps)
        return super().warm_up(ranked, space, top)

    @property
    def baseline(self) -> Optional[float]:
        return self.bl_num / self.bl_den if self.bl_den else None

    def update(self) -> Optional[float]:
        """One Adam step on the pending batch (called automatically every ``batch_size`` trials;
        call it to flush a partial batch). Returns the loss, or None when nothing was pending."""
        if not self.pending:
            return None
        batch, self.pending = self.pending, []
        self.last_batch_reward = float(np.mean([r for _, r, _ in batch]))
        loss = self._apply(batch)
        self.num_updates += 1
        self.journal.append(batch)
        if len(self.journal) >= self.snapshot_every:
            self._snapshot()
        return loss

    def _snapshot(self):
        """The arrays :meth:`get_arrays` returns become the current ones (the journal empties)."""
        self.journal = []
        self._snap_adam_step = self.adam_step
        self._snap = self._pack()
        self._arrays_version += 1

    # -- statistics ----------------------------------------------------------------------
    def summary_scalars(self, space: Optional[ParamSpace] = None) -> dict:
        """``{name: float}`` for TensorBoard: ``baseline``; ``reward`` (mean raw reward of the batch of
        the last policy update; before the first update, of the batch being collected); and, along
        the policy's most likely trajectory (argmax at every decision), ``entropy`` (mean over
        decisions) and ``prob/<decision>`` (probability of the most likely option).

        Changes nothing: no RNG draw, no new weights (decisions the policy has not seen yet are
        left out, and so is everything after them).
        """
        out = {}
        if self.baseline is not None:
            out["baseline"] = float(self.baseline)
        rewards = [r for _, r, _ in self.pending]
        if self.last_batch_reward is not None:
            out["reward"] = self.last_batch_reward
        elif rewards:
            out["reward"] = float(np.mean(rewards))
        if space is None or "g_emb" not in self.weights:
            return out
        x, h, c = self._start()
        values, ents = {}, []
        for p in space.params:
            if not p.is_active(values):
                continue
            k = self._index.get(p.name)
            if k is None or self.vocab[k][1] != len(self.options_of(p)):
                break  # unseen decision: its weights do not exist yet (the LSTM input would be a guess)
            probs, h, c = self._step(k, x, h, c)
            probs = probs.astype(np.float64)
            a = int(np.argmax(probs))
            values[p.name] = self.options_of(p)[a]
            out[f"prob/{p.name}"] = float(probs[a])
            ents.append(float(-np.sum(probs[probs > 0] * np.log(probs[probs > 0]))))
            x = self.weights[f"p{k}/emb"][a][None, :]
        if ents:
            out["entropy"] = float(np.mean(ents))
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


def _inverse_cdf(probs: np.ndarray, u: float) -> int:
    p = np.asarray(probs, dtype=np.float64)
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(p) - 1))
