"""The training loop every one-shot strategy shares, and its checkpoints.

Why this module exists: DARTS, DrNAS, GDAS, SPOS, supernet + evolution and ENAS differ only in
what the supernet is given per step and how the architecture learns (``architect.py``); the
data order, the weight step, the architecture step, child evaluation with shared weights,
``tf.distribute`` and the checkpoint/resume logic are the same and live here.

One epoch = ``floor(len(x_train) / batch_size)`` steps (the remainder is dropped); each step:

1. gradient strategies: one architecture step on a validation batch (first order);
2. one weight step on a training batch, with the architecture (or the sampled child) the
   strategy gives (global-norm gradient clipping at ``grad_clip``);

then ``architect.after_epoch`` (ENAS' controller phase). Batches and every random draw come from
generators seeded by ``(seed, epoch)`` or ``(seed, step)``, so a search is deterministic for a
seed and a resumed one continues exactly as the uninterrupted one would have.

Evaluations with shared weights (children, the derived cell) use batch statistics
(``training=True``), as NAS-Bench-201's search code does (``track_running_stats=False``): the
moving averages of a supernet mix every child and describe none of them.

Distribution: variables are created under ``strategy.scope()``; a step splits its batch over the
replicas (``experimental_distribute_values_from_function``), each replica's loss is its sum over
``global batch``, Keras' optimizer all-reduces the gradients. With one replica this is the plain
single-device step. Gradient clipping acts on the all-reduced gradient, as on one device
(:func:`clip_summed_gradients`).

Checkpoints: one ``checkpoint.npz`` holding every variable (model, optimizers, architecture),
the controller's arrays and the JSON state, written atomically (``keras_nas.atomic``: temp file
+ ``os.replace``) after every epoch.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import tensorflow as tf

from keras_nas import atomic


class Loop:
    """Shared weights + architecture training (see the module docstring)."""

    def __init__(
        self,
        space,
        model,
        architect,
        data,
        *,
        batch_size,
        seed,
        epochs,
        optimizer,
        grad_clip,
        eval_batches,
        distribute,
        run_eagerly=False,
    ):
        self.space, self.model, self.architect = space, model, architect
        self.run_eagerly = bool(run_eagerly)
        self.x_train, self.y_train, self.x_val, self.y_val = data
        self.batch_size, self.seed, self.epochs = int(batch_size), int(seed), int(epochs)
        self.grad_clip = grad_clip
        self.strategy = distribute or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.steps_per_epoch = len(self.x_train) // self.batch_size
        self.eval_batches = eval_batches
        self.epoch_extras: dict = {}
        self._rotate = 0
        with self.strategy.scope():
            self.optimizer = optimizer(self.steps_per_epoch * self.epochs)
            self.optimizer.build(self.model.trainable_variables)
            architect.create_variables()
        rng = np.random.default_rng([self.seed, 3])
        self._val_order = rng.permutation(len(self.x_val))
        self._dummy_path = np.zeros((space.num_edges,), np.int32)
        self._fns = {}

    # -- graph functions -------------------------------------------------------------------
    def _split(self, a):
        if self.replicas == 1:
            return tf.constant(a)
        n = self.replicas
        return self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(a[ctx.replica_id_in_sync_group :: n])
        )

    def _sum(self, v):
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)

    @staticmethod
    def _metrics(y, logits):
        per = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(y, tf.int32), logits=logits
        )
        correct = tf.reduce_sum(
            tf.cast(
                tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32)),
                tf.float32,
            )
        )
        return tf.reduce_sum(per), correct

    def _weight_step_fn(self):
        model, arch, opt = self.model, self.architect, self.optimizer

        def replica(x, y, seed, tau, path, global_batch):
            with tf.GradientTape() as tape:
                w, p = arch.weight_arch(seed, tau, path)
                logits = model(x, arch=w, path=p, training=True)
                loss_sum, correct = self._metrics(y, logits)
                loss = loss_sum / global_batch
            variables = model.trainable_variables
            grads = tape.gradient(loss, variables)
            if self.grad_clip:
                grads = clip_summed_gradients(grads, self.grad_clip, self.replicas)
            opt.apply_gradients(zip(grads, variables))
            return loss_sum, correct

        def step(x, y, seed, tau, path, global_batch):
            out = self.strategy.run(replica, args=(x, y, seed, tau, path, global_batch))
            return [self._sum(o) for o in out]

        return self._compile(step)

    def _arch_step_fn(self):
        model, arch = self.model, self.architect

        def replica(x, y, seed, tau, global_batch):
            with tf.GradientTape() as tape:
                w, p = arch.arch_inputs(seed, tau)
                logits = model(x, arch=w, path=p, training=True)
                loss_sum, _ = self._metrics(y, logits)
                loss = loss_sum / global_batch + arch.arch_regularizer() / self.replicas
            variables = arch.arch_variables()
            grads = tape.gradient(loss, variables)
            arch.arch_optimizer.apply_gradients(zip(grads, variables))
            return loss_sum

        def step(x, y, seed, tau, global_batch):
            return self._sum(self.strategy.run(replica, args=(x, y, seed, tau, global_batch)))

        return self._compile(step)

    def _eval_fn(self):
        model = self.model

        def replica(x, y, path):
            logits = model(x, path=path, training=True)
            return self._metrics(y, logits)

        def evaluate(x, y, path):
            out = self.strategy.run(replica, args=(x, y, path))
            return [self._sum(o) for o in out]

        return self._compile(evaluate, reduce_retracing=True)

    def _compile(self, fn, **kwargs):
        """``fn`` as a ``tf.function``, or as it is with ``run_eagerly`` (no tracing: for tiny
        networks and few steps, e.g. tests, running op by op is faster than tracing the step)."""
        return fn if self.run_eagerly else tf.function(fn, **kwargs)

    def _fn(self, name):
        if name not in self._fns:
            self._fns[name] = getattr(self, f"_{name}_fn")()
        return self._fns[name]

    # -- one epoch ---------------------------------------------------------------------------
    def run_epoch(self, epoch: int) -> dict:
        """Train epoch ``epoch`` (0-based); returns its trace record (without architecture fields)."""
        t0 = time.time()
        bs, n_val = self.batch_size, len(self.x_val)
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.x_train))
        val_order = np.random.default_rng([self.seed, epoch, 2]).permutation(n_val)
        path_rng = np.random.default_rng([self.seed, epoch, 1])
        tau = np.float32(self.architect.tau(epoch))
        arch_step = self.architect.has_arch_step and self.architect.learns(epoch)
        if self.architect.has_arch_step:
            self.architect.epoch_var.assign(float(epoch))
        loss = correct = arch_loss = 0.0
        seen = 0
        for i in range(self.steps_per_epoch):
            g = epoch * self.steps_per_epoch + i
            if arch_step:
                vi = np.take(val_order, np.arange(i * bs, (i + 1) * bs), mode="wrap")
                xv, yv = self.x_val[vi], self.y_val[vi]
                arch_loss += float(
                    self._fn("arch_step")(
                        self._split(xv),
                        self._split(yv),
                        tf.constant([self.seed, 2 * g + 1], tf.int64),
                        tau,
                        tf.constant(float(len(yv))),
                    )
                )
            idx = order[i * bs : (i + 1) * bs]
            path = (
                self.architect.host_path(path_rng, epoch)
                if self.architect.host_sampled
                else self._dummy_path
            )
            ls, c = self._fn("weight_step")(
                self._split(self.x_train[idx]),
                self._split(self.y_train[idx]),
                tf.constant([self.seed, 2 * g], tf.int64),
                tau,
                tf.constant(path, tf.int32),
                tf.constant(float(len(idx))),
            )
            loss += float(ls)
            correct += float(c)
            seen += len(idx)
        self.epoch_extras = {}
        self._rotate = epoch * 7919
        self.architect.after_epoch(self, epoch)
        rec = {
            "epoch": epoch + 1,
            "train_loss": loss / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "learning_rate": float(_current_lr(self.optimizer)),
            "seconds": None,
        }
        if arch_step:
            rec["arch_loss"] = arch_loss / max(self.steps_per_epoch, 1)
        if self.architect.name == "gdas":
            rec["tau"] = float(tau)
        rec.update(self.epoch_extras)
        rec["seconds"] = round(time.time() - t0, 3)
        return rec

    # -- evaluation with shared weights ---------------------------------------------------
    def val_batches(self):
        bs, order = self.batch_size, self._val_order
        out = [order[s : s + bs] for s in range(0, len(order), bs)]
        if self.replicas > 1:
            out = [b for b in out if len(b) >= self.replicas]
        return out

    def evaluate_arch(self, arch, batches=None, rotate=False) -> float:
        """Accuracy of ``arch`` with the shared weights: on the first ``eval_batches`` validation
        batches (all when None), or on ``batches`` batches taken in turn (``rotate``: ENAS' reward)."""
        all_b = self.val_batches()
        if rotate:
            chosen = [all_b[(self._rotate + j) % len(all_b)] for j in range(batches or 1)]
            self._rotate += batches or 1
        else:
            k = batches or self.eval_batches
            chosen = all_b if not k else all_b[:k]
        path = tf.constant(self.space.path_of(arch), tf.int32)
        correct = total = 0.0
        for b in chosen:
            _, c = self._fn("eval")(self._split(self.x_val[b]), self._split(self.y_val[b]), path)
            correct += float(c)
            total += len(b)
        return correct / max(total, 1.0)

    # -- checkpoints -------------------------------------------------------------------------
    def _variables(self):
        return (
            list(self.model.weights)
            + list(self.optimizer.variables)
            + list(self.architect.variables())
        )

    def save(self, path: str, state: dict) -> None:
        arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(self._variables())}
        arrays.update({f"x/{k}": np.asarray(v) for k, v in self.architect.arrays().items()})
        state = {
            **state,
            "architect": self.architect.get_state(),
            "num_variables": len(self._variables()),
        }
        arrays["state"] = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic.write_atomic(path, buf.getvalue())

    def restore(self, path: str) -> dict:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        state = json.loads(arrays.pop("state").tobytes().decode("utf-8"))
        variables = self._variables()
        if state.get("num_variables") != len(variables):
            raise ValueError(
                f"checkpoint {path} holds {state.get('num_variables')} variables, this search has "
                f"{len(variables)}; it was written by another configuration."
            )
        for i, v in enumerate(variables):
            v.assign(arrays[f"v{i}"])
        self.architect.set_state(
            state.get("architect", {}), {k[2:]: v for k, v in arrays.items() if k.startswith("x/")}
        )
        return state

    @staticmethod
    def read_state(path: str) -> dict:
        with np.load(path) as z:
            return json.loads(z["state"].tobytes().decode("utf-8"))


def clip_summed_gradients(grads, clip_norm, replicas=1):
    """Scale this replica's ``grads`` so that their sum over the replicas (what the optimizer
    applies) has global norm at most ``clip_norm``: the norm is taken of the all-reduced gradient,
    so clipping means the same with any number of replicas. ``None`` gradients (ops off the
    sampled path) stay ``None``."""
    present = [g for g in grads if g is not None]
    if not present:
        return grads
    if replicas > 1:
        present = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, present
        )
    # tf.clip_by_global_norm's factor, from the summed gradient's norm
    scale = clip_norm * tf.minimum(1.0 / tf.linalg.global_norm(present), 1.0 / clip_norm)
    return [None if g is None else g * scale for g in grads]


def _current_lr(opt):
    lr = opt.learning_rate
    return np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr)
