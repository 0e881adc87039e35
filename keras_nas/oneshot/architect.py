"""The architecture side of each one-shot strategy: what the supernet is given, how it is learnt,
and how the final architecture is chosen.

One class per strategy, all with the same small interface that the shared training loop
(:mod:`keras_nas.oneshot.loop`) drives:

* ``weight_arch(seed, tau, path)`` (in the traced graph): the ``(arch, path)`` pair the supernet
  is called with in a *weight* step;
* ``has_arch_step`` / ``arch_inputs(seed, tau)`` / ``arch_regularizer()``: gradient strategies
  (DARTS, DrNAS, GDAS) also take an *architecture* step on a validation batch (first order, as
  DARTS' ``unrolled=False``), before the weight step as in the DARTS reference loop;
* ``host_path(rng)``: strategies that sample a child on the host (SPOS, supernet + evolution,
  ENAS) return its op indices; ``after_epoch(loop)`` runs ENAS' controller phase;
* ``probabilities()`` (E, K) for the trace; ``derive()`` the architecture after an epoch;
  ``select(loop)`` the final choice (argmax, RSPS sampling, evolution, ENAS sampling);
* ``variables()`` / ``get_state()`` / ``set_state()`` / ``arrays()`` for checkpoints;
* ``learns(epoch)``: False during the ``warmup_epochs`` (no architecture step, no controller
  phase, ENAS samples children uniformly), True after.

Strategies:

* ``darts`` -- softmax(alpha) mixes every op (Liu et al. 2019, first order). Arch optimizer
  Adam(lr 3e-4, betas 0.5/0.999) with L2 1e-3 on alpha, as the reference code.
* ``drnas`` -- Dirichlet relaxation (Chen et al. 2021): concentration ``beta = elu(alpha) + 1``,
  every step mixes with a reparameterised sample ``w ~ Dir(beta)`` (normalised Gamma draws,
  whose implicit gradients TensorFlow provides: ``tf.random.stateless_gamma``, the stateless
  form of ``tf.random.gamma``, so a resumed search draws the same samples). The collapse
  guard is the regulariser: ``drnas_reg="kl"`` adds ``reg_scale * KL(Dir(beta) || Dir(1))``
  (the anchor: a uniform Dirichlet), ``"l2"`` an L2 penalty of ``reg_scale`` on alpha (the
  reference code's default). The sampling noise keeps weak ops alive and the anchor keeps
  concentrations from running off, so the search cannot lock onto the parameter-free ops
  early. ``beta_reg > 0`` adds beta-DARTS' regulariser (``mean_e logsumexp(alpha_e)``, weight
  ramped linearly over the epochs) to darts or drnas.
* ``gdas`` -- Gumbel-softmax with hard straight-through (Dong & Yang 2019): per step and edge
  one op is sampled and only that op is computed; temperature from ``tau_max`` (10) to
  ``tau_min`` (0.1) linearly over the epochs.
* ``spos`` -- uniform single-path sampling trains the shared weights (Guo et al. 2020; RSPS of
  Li & Talwalkar 2019); the architecture is then chosen among ``num_samples`` random children
  scored on validation batches with the shared weights.
* ``supernet-evolution`` -- the same supernet training, then aging evolution
  (:class:`~keras_nas.controllers.evolution.AgingEvolutionController`, ask/tell) over children
  scored on the trained supernet (DetNAS, Chen et al. 2019).
* ``enas`` -- keras-nas's REINFORCE LSTM controller (:class:`~keras_nas.controllers.reinforce.
  ReinforceController`, ENAS' settings: 64 units, Adam 0.0035, entropy 1e-4, baseline decay
  0.99) samples children of the shared supernet. Its logit shaping (``enas_controller``) is that
  of the reference ENAS for the space: ``"nb201"`` (NAS-Bench-201's ENAS: logits / 5, then
  2.5 tanh, so an op can reach ~0.97) or ``"micro"`` (ENAS' micro search: 1.1 tanh, 0.44 for
  ops, at most ~0.4 per op: the controller stays near uniform). Each epoch: one
  child per weight step, then a controller phase (``enas_controller_steps`` children, reward =
  accuracy on one validation batch with the shared weights). Final cell as ENAS: sample
  ``num_samples`` children, keep the best on validation.

  ENAS is exposed here only, not as a keras-tuner Tuner: a keras-tuner trial builds and trains
  a fresh model from a hyperparameter set, while ENAS' children must share one model's weights
  and alternate with the controller at the step level; a Tuner wrapping it would be a
  single-trial shell around this loop that adds nothing but a second resume mechanism.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

STRATEGIES = ("darts", "drnas", "gdas", "spos", "supernet-evolution", "enas")

# ENAS controller logit shaping, as each reference implementation: NAS-Bench-201's ENAS
# (AutoDL-Projects: temperature 5 then tanh 2.5) and ENAS' own micro (cell) search.
ENAS_LOGITS = {
    "nb201": {"temperature": 5.0, "tanh_constant": 2.5, "op_tanh_reduce": 1.0},
    "micro": {"temperature": None, "tanh_constant": 1.1, "op_tanh_reduce": 2.5},
}
# the reference setting per search space (``enas_controller="auto"``)
ENAS_LOGITS_FOR_SPACE = {"nb201": "nb201", "darts": "micro"}


def _entropy(p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1.0)
    return float(np.mean(-np.sum(p * np.log(p), axis=-1)))


def entropy(p) -> float:
    """Mean entropy (nats) of the rows of a probability matrix."""
    return _entropy(p)


class Architect:
    """Base class (see the module docstring)."""

    name = ""
    has_arch_step = False
    host_sampled = False

    def __init__(self, space, *, seed, epochs, options):
        self.space = space
        self.seed = int(seed)
        self.epochs = int(epochs)
        self.opt = options
        self.warmup_epochs = int(options.get("warmup_epochs", 0) or 0)
        self.E, self.K = space.num_edges, space.num_ops

    def learns(self, epoch: int) -> bool:
        """False during the warm-up epochs: the shared weights train on uniformly sampled (or,
        for gradient strategies, uniformly mixed) children and the architecture stays put."""
        return epoch >= self.warmup_epochs

    # called under the distribution strategy's scope
    def create_variables(self):
        pass

    def variables(self) -> list:
        """Variables saved in checkpoints (architecture and its optimizer)."""
        return []

    def weight_arch(self, seed, tau, path):
        raise NotImplementedError

    def host_path(self, rng, epoch):
        return None

    def probabilities(self):
        return None

    def derive(self):
        p = self.probabilities()
        return None if p is None else self.space.derive(p)

    def tau(self, epoch: int) -> float:
        return 1.0

    def after_epoch(self, loop, epoch):
        pass

    def select(self, loop):
        """(final architecture, candidates [(arch string, score)])."""
        return self.derive(), []

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict, arrays: dict):
        pass

    def arrays(self) -> dict:
        return {}


class GradientArchitect(Architect):
    """Architecture logits alpha (E, K), learnt by Adam on validation batches."""

    has_arch_step = True

    def create_variables(self):
        import keras

        rng = np.random.default_rng([self.seed, 7])
        self.alpha = tf.Variable(
            (1e-3 * rng.standard_normal((self.E, self.K))).astype(np.float32), name="alpha"
        )
        self.arch_optimizer = keras.optimizers.Adam(
            self.opt["arch_learning_rate"], beta_1=0.5, beta_2=0.999, epsilon=1e-8
        )
        self.arch_optimizer.build([self.alpha])
        self.epoch_var = tf.Variable(0.0, trainable=False, name="arch_epoch")

    def variables(self):
        return [self.alpha, self.epoch_var] + list(self.arch_optimizer.variables)

    def arch_variables(self):
        return [self.alpha]

    def arch_inputs(self, seed, tau):
        return self.weight_arch(seed, tau, None)

    def arch_regularizer(self):
        reg = 0.5 * self.opt["arch_weight_decay"] * tf.reduce_sum(tf.square(self.alpha))
        if self.opt.get("beta_reg", 0.0):
            ramp = self.epoch_var / max(self.epochs - 1, 1)
            reg += (
                self.opt["beta_reg"]
                * ramp
                * tf.reduce_mean(tf.reduce_logsumexp(self.alpha, axis=-1))
            )
        return reg

    def logits(self) -> np.ndarray:
        return np.asarray(self.alpha.numpy(), np.float64)

    def probabilities(self):
        a = self.logits()
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class Darts(GradientArchitect):
    name = "darts"

    def weight_arch(self, seed, tau, path):
        return tf.nn.softmax(self.alpha, axis=-1), None


class DrNAS(GradientArchitect):
    name = "drnas"

    def concentration(self):
        return tf.nn.elu(self.alpha) + 1.0

    def weight_arch(self, seed, tau, path):
        beta = self.concentration()
        g = tf.random.stateless_gamma([self.E, self.K], seed=seed, alpha=beta)
        g = tf.maximum(g, 1e-30)  # a Gamma draw can underflow to 0 for tiny concentrations
        return g / tf.reduce_sum(g, axis=-1, keepdims=True), None

    def arch_regularizer(self):
        reg = super().arch_regularizer()
        scale = self.opt["reg_scale"]
        if self.opt["drnas_reg"] == "kl":
            reg += scale * tf.reduce_sum(
                dirichlet_kl(self.concentration(), tf.ones_like(self.alpha))
            )
        else:
            reg += 0.5 * scale * tf.reduce_sum(tf.square(self.alpha))
        return reg

    def probabilities(self):
        a = self.logits()
        beta = np.where(a > 0, a, np.expm1(np.minimum(a, 0))) + 1.0
        return beta / beta.sum(axis=1, keepdims=True)  # the Dirichlet's mean


def dirichlet_kl(a, b):
    """KL(Dir(a) || Dir(b)) per row."""
    a0, b0 = tf.reduce_sum(a, -1), tf.reduce_sum(b, -1)
    return (
        tf.math.lgamma(a0)
        - tf.reduce_sum(tf.math.lgamma(a), -1)
        - tf.math.lgamma(b0)
        + tf.reduce_sum(tf.math.lgamma(b), -1)
        + tf.reduce_sum((a - b) * (tf.math.digamma(a) - tf.math.digamma(a0)[..., None]), -1)
    )


class Gdas(GradientArchitect):
    name = "gdas"

    def tau(self, epoch):
        hi, lo = self.opt["tau_max"], self.opt["tau_min"]
        return hi - (hi - lo) * epoch / max(self.epochs - 1, 1)

    def weight_arch(self, seed, tau, path):
        u = tf.random.stateless_uniform([self.E, self.K], seed=seed, minval=1e-10, maxval=1.0)
        gumbel = -tf.math.log(-tf.math.log(u))
        soft = tf.nn.softmax((tf.nn.log_softmax(self.alpha, -1) + gumbel) / tau, axis=-1)
        index = tf.argmax(soft, axis=-1, output_type=tf.int32)
        hard = tf.one_hot(index, self.K, dtype=soft.dtype)
        return hard - tf.stop_gradient(soft) + soft, index


class Spos(Architect):
    name = "spos"
    host_sampled = True

    def weight_arch(self, seed, tau, path):
        return None, path

    def host_path(self, rng, epoch):
        return self.space.random_path(rng)

    def select(self, loop):
        rng = np.random.default_rng([self.seed, 11])
        space = self.space.search_space()
        scored = {}
        for _ in range(self.opt["num_samples"]):
            arch = space.decode(_random_values(space, rng))
            key = str(arch)
            if key not in scored:
                scored[key] = (arch, loop.evaluate_arch(arch))
        best = max(scored.values(), key=lambda t: t[1])[0]
        return best, sorted(((k, s) for k, (_, s) in scored.items()), key=lambda t: -t[1])


def _random_values(space, rng):
    return {d.name: d.options[int(rng.integers(len(d.options)))] for d in space.decisions}


class SupernetEvolution(Spos):
    name = "supernet-evolution"

    def select(self, loop):
        from keras_nas.controllers.evolution import AgingEvolutionController
        from keras_nas.controllers.params import ParamSpace

        space = self.space.search_space()
        ps = ParamSpace.from_search_space(space)
        n = self.opt["num_samples"]
        pop = self.opt["population_size"] or max(2, min(20, n // 4))
        sample = self.opt["sample_size"] or max(1, pop // 2)
        ctrl = AgingEvolutionController(pop, min(sample, pop), seed=self.seed)
        scored = {}
        for _ in range(n):
            values = ctrl.propose(ps)
            arch = space.decode(values)
            key = str(arch)
            if key not in scored:
                scored[key] = (arch, loop.evaluate_arch(arch))
            ctrl.observe(values, scored[key][1], ps)
        best = max(scored.values(), key=lambda t: t[1])[0]
        return best, sorted(((k, s) for k, (_, s) in scored.items()), key=lambda t: -t[1])


class Enas(Architect):
    name = "enas"
    host_sampled = True

    def create_variables(self):
        from keras_nas.controllers.params import ParamSpace
        from keras_nas.controllers.reinforce import ReinforceController

        self.search_space = self.space.search_space()
        self.ps = ParamSpace.from_search_space(self.search_space)
        self.controller = ReinforceController(
            seed=self.seed,
            units=64,
            learning_rate=self.opt["controller_learning_rate"],
            baseline_decay=0.99,
            entropy_weight=1e-4,
            snapshot_every=1,
            **ENAS_LOGITS[self.opt.get("enas_controller", "micro")],
        )

    def weight_arch(self, seed, tau, path):
        return None, path

    def host_path(self, rng, epoch):
        if not self.learns(epoch):
            return self.space.random_path(rng)
        values = self.controller.propose(self.ps)
        return self.space.path_of(self.search_space.decode(values))

    def after_epoch(self, loop, epoch):
        if not self.learns(epoch):
            return
        rewards = []
        for _ in range(self.opt["enas_controller_steps"]):
            values = self.controller.propose(self.ps)
            arch = self.search_space.decode(values)
            r = loop.evaluate_arch(arch, batches=1, rotate=True)
            self.controller.observe(values, r, self.ps)
            rewards.append(r)
        self.controller.update()
        loop.epoch_extras["controller_reward"] = float(np.mean(rewards)) if rewards else None

    def _greedy(self):
        values, probs = {}, []
        for p in self.ps.params:
            pr = self.controller.probabilities(self.ps, {**values, p.name: p.options[0]})[p.name]
            values[p.name] = p.options[int(np.argmax(pr))]
            probs.append(pr)
        return values, probs

    def probabilities(self):
        """Per decision, the controller's probabilities along its most likely child (greedy decoding).
        For the DARTS space the rows are the input and op decisions, not supernet edges."""
        _, probs = self._greedy()
        width = max(len(p) for p in probs)
        out = np.zeros((len(probs), width))
        for i, p in enumerate(probs):
            out[i, : len(p)] = p
        return out

    def derive(self):
        values, _ = self._greedy()
        return self.search_space.decode(values)

    def select(self, loop):
        scored = {}
        for _ in range(self.opt["num_samples"]):
            arch = self.search_space.decode(self.controller.propose(self.ps))
            key = str(arch)
            if key not in scored:
                scored[key] = (arch, loop.evaluate_arch(arch))
        best = max(scored.values(), key=lambda t: t[1])[0]
        return best, sorted(((k, s) for k, (_, s) in scored.items()), key=lambda t: -t[1])

    def get_state(self):
        return {"controller": self.controller.get_state()}

    def set_state(self, state, arrays):
        if "controller" in state:
            self.controller.set_state(state["controller"])
            ctrl = {
                k[len("controller/") :]: v for k, v in arrays.items() if k.startswith("controller/")
            }
            if ctrl:
                self.controller.set_arrays(ctrl)

    def arrays(self):
        return {f"controller/{k}": v for k, v in (self.controller.get_arrays() or {}).items()}


ARCHITECTS = {c.name: c for c in (Darts, DrNAS, Gdas, Spos, SupernetEvolution, Enas)}


def make_architect(name, space, *, seed, epochs, options) -> Architect:
    return ARCHITECTS[name](space, seed=seed, epochs=epochs, options=options)
