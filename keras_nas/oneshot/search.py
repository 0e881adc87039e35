"""``keras_nas.oneshot.search``: one entry point for every one-shot strategy and space.

Example (the digits protocol of ``keras_nas.benchmarks.digits_nb201``)::

    from keras_nas.oneshot import search
    r = search(x_train, y_train, x_val, y_val, space="nb201", strategy="drnas", epochs=6, batch_size=64,
               channels=8, num_cells=1, optimizer="adam", learning_rate=0.01, learning_rate_min=0.0, seed=0,
               directory="runs/drnas")
    r.architecture            # NB201Cell
    r.build(num_classes=10, input_shape=(8, 8, 1), channels=8, num_cells=1)   # build_nb201_network(...)
    r.trace[-1]["probabilities"], r.trace[-1]["derived"]

With ``directory`` the search writes after every epoch ``checkpoint.npz`` (every variable, the
optimizers, the architecture and controller state) and ``oneshot.json`` (settings, trace), both
atomically; calling ``search`` again with the same arguments resumes from the last finished
epoch (a killed run loses at most the epoch in progress) and a finished one returns its result.
At the end it writes ``best_genotype.json`` (what ``keras-nas train --genotype`` and
``keras_nas.rundir.load_architecture`` read) and TensorBoard events under ``tensorboard/``
(architecture weights and entropy per epoch, the derived cell as text).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Optional

import numpy as np

from keras_nas import atomic
from keras_nas.oneshot.architect import ENAS_LOGITS, ENAS_LOGITS_FOR_SPACE, STRATEGIES, entropy
from keras_nas.oneshot.arguments import (  # OneShotError: re-exported
    SETTING_ADDED_LATER,
    OneShotError,
    check_data,
    fail,
    fingerprint,
    positive_float,
    positive_int,
)
from keras_nas.oneshot.spaces import SPACES, get_space

__all__ = ["OneShotError", "OneShotResult", "search"]

CHECKPOINT = "checkpoint.npz"
STATE_JSON = "oneshot.json"
BEST_GENOTYPE = "best_genotype.json"  # keras_nas.rundir.BEST_GENOTYPE
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass
class OneShotResult:
    """What :func:`search` returns.

    ``architecture``: the derived ``NB201Cell`` (space ``nb201``) or ``Genotype`` (space ``darts``).
    ``trace``: one record per epoch: ``epoch``, ``train_loss``, ``train_accuracy``, ``learning_rate``,
    ``seconds``, and where the strategy has them ``arch_loss``, ``probabilities`` (E x K architecture
    weights, or the ENAS controller's probabilities along its most likely child), ``entropy``,
    ``derived`` (the cell after that epoch), ``val_accuracy`` (the derived cell's accuracy with the
    shared weights), ``tau`` (GDAS), ``controller_reward`` (ENAS).
    ``epochs``: supernet epochs trained in total; ``epochs_this_run``: by this call (0 when it
    only returned a finished search). ``seconds``: wall-clock of this call; ``total_seconds``:
    summed over the calls that built the result. ``candidates``: ``(architecture string, shared-weight
    validation accuracy)`` of the children scored by the final selection, best first.
    """

    space: str
    strategy: str
    architecture: Any
    trace: list
    epochs: int
    epochs_this_run: int
    seconds: float
    total_seconds: float
    val_accuracy: Optional[float]
    candidates: list
    settings: dict
    directory: Optional[str] = None

    @property
    def genotype(self):
        return self.architecture

    def build(self, **kwargs):
        """The derived architecture as a Keras model (``build_nb201_network`` / ``build_network``;
        ``channels`` is taken for ``build_network``'s ``filters``)."""
        return get_space(
            self.space, self.settings.get("ops"), self.settings.get("num_blocks", 4)
        ).build_network(self.architecture, **kwargs)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["architecture"] = str(self.architecture)
        return d


def _make_optimizer(name, lr, lr_min, schedule, momentum, weight_decay):
    import keras

    def make(total_steps):
        rate = lr
        if schedule == "cosine":
            rate = keras.optimizers.schedules.CosineDecay(
                lr, max(total_steps, 1), alpha=lr_min / lr if lr else 0.0
            )
        if name == "sgd":
            return keras.optimizers.SGD(rate, momentum=momentum, weight_decay=weight_decay or None)
        return keras.optimizers.Adam(rate, weight_decay=weight_decay or None)

    return make


def search(
    x_train=None,
    y_train=None,
    x_val=None,
    y_val=None,
    *,
    space: str = "nb201",
    strategy: str = "darts",
    epochs: int = 50,
    batch_size: int = 64,
    seed: int = 0,
    channels: int = 16,
    num_cells: int = 5,
    num_blocks: int = 4,
    ops=None,
    num_classes: Optional[int] = None,
    directory: Optional[str] = None,
    optimizer: str = "sgd",
    learning_rate: Optional[float] = None,
    learning_rate_min: Optional[float] = None,
    lr_schedule: str = "cosine",
    momentum: float = 0.9,
    weight_decay: Optional[float] = None,
    grad_clip: Optional[float] = 5.0,
    bn_momentum: float = 0.9,
    bn_epsilon: float = 1e-5,
    arch_learning_rate: float = 3e-4,
    arch_weight_decay: float = 1e-3,
    drnas_reg: str = "kl",
    reg_scale: float = 1e-3,
    beta_reg: float = 0.0,
    tau_max: float = 10.0,
    tau_min: float = 0.1,
    num_samples: int = 100,
    eval_batches: Optional[int] = None,
    population_size: int = 0,
    sample_size: int = 0,
    enas_controller_steps: Optional[int] = None,
    warmup_epochs: int = 0,
    controller_learning_rate: float = 0.0035,
    enas_controller: str = "auto",
    distribute=None,
    run_eagerly: bool = False,
    tensorboard: bool = True,
    log: Optional[Callable[[str], Any]] = None,
) -> OneShotResult:
    """Run (or resume) a one-shot architecture search; see the module docstring and ``docs/oneshot.md``.

    Args:
      x_train, y_train: images (N, H, W, C) and integer labels; trains the shared weights.
      x_val, y_val: validation split; learns the architecture (DARTS, DrNAS, GDAS), rewards the ENAS
        controller and scores children (SPOS/RSPS, evolution, ENAS, the derived cell).
      space: ``"nb201"`` (NAS-Bench-201 cell, ``build_nb201_network``) or ``"darts"`` (the DARTS
        cell space: normal + reduction cell of ``num_blocks`` nodes, a ``Genotype`` for
        ``build_network``; ``ops`` must include ``none``; default ``DARTS_OPS``).
      strategy: ``darts``, ``drnas``, ``gdas``, ``spos``, ``supernet-evolution`` or ``enas``.
      epochs: supernet training epochs (each ``floor(len(x_train) / batch_size)`` steps).
      channels, num_cells: the supernet's (and derived network's) C and N; ``num_blocks``: nodes
        per cell of the darts space; ``ops``: candidate ops (default: the space's all).
      num_classes: default ``max(label) + 1``.
      optimizer, learning_rate, learning_rate_min, lr_schedule, momentum, weight_decay, grad_clip:
        the shared weights' optimizer: ``"sgd"`` (DARTS: lr 0.025 cosine to 0.001, momentum 0.9,
        weight decay 3e-4) or ``"adam"`` (lr 0.001 cosine to 0, no weight decay); weight decay is
        Keras' decoupled one. ``lr_schedule`` ``"cosine"`` (over all steps) or ``"constant"``.
      bn_momentum, bn_epsilon: every batch norm of the supernet.
      arch_learning_rate, arch_weight_decay: Adam (betas 0.5, 0.999) on the architecture logits and
        their L2 penalty (DARTS' 3e-4 and 1e-3).
      drnas_reg, reg_scale: DrNAS' regulariser, ``"kl"`` (to a uniform Dirichlet anchor) or ``"l2"``.
      beta_reg: beta-DARTS' regulariser weight (darts, drnas, gdas; 0 = off).
      tau_max, tau_min: GDAS' temperature schedule.
      num_samples: children scored by the final selection (spos: random, supernet-evolution: the
        evolution budget, enas: controller samples).
      eval_batches: validation batches a child is scored on (None: the whole split).
      population_size, sample_size: supernet-evolution's P and S (0: from num_samples).
      enas_controller_steps: controller updates per epoch (default: steps per epoch).
      warmup_epochs: the first epochs train only the shared weights, on uniformly sampled
        children (spos-style; darts/drnas: uniform mixing, no architecture step; enas: random
        children, no controller phase), so that the architecture is learnt from shared weights that
        already mean something (PC-DARTS' and ProxylessNAS' warm-up). Must be < ``epochs``.
      controller_learning_rate: the ENAS controller's Adam learning rate.
      enas_controller: the ENAS controller's logit shaping: ``"nb201"`` (NAS-Bench-201's ENAS,
        lets the policy concentrate), ``"micro"`` (ENAS' cell search, keeps it near uniform) or
        ``"auto"``: the space's own (nb201 -> ``"nb201"``, darts -> ``"micro"``; a resumed search
        keeps the one it started with).
      directory: checkpoint, state, TensorBoard and ``best_genotype.json`` (None: nothing written).
      distribute: a ``tf.distribute.Strategy`` (e.g. MirroredStrategy); None: the default strategy.
      run_eagerly: run the steps op by op instead of as traced ``tf.function``s. Tracing a step
        costs seconds per strategy; for tiny networks and a few steps (tests, smoke runs) eager is
        faster, for real searches much slower. Same results either way (not a setting that a
        resumed search must repeat).
      log: called with one progress line per epoch (e.g. ``print``).
    """
    import keras
    import tensorflow as tf

    from keras_nas.oneshot.architect import make_architect
    from keras_nas.oneshot.loop import Loop

    t0 = time.time()
    if space not in SPACES:
        fail(f"space must be one of {list(SPACES)}, got {space!r}.")
    if strategy not in STRATEGIES:
        fail(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}.")
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    channels = positive_int("channels", channels)
    num_cells = positive_int("num_cells", num_cells)
    num_blocks = positive_int("num_blocks", num_blocks)
    num_samples = positive_int("num_samples", num_samples)
    seed = positive_int("seed", seed, lo=0)
    if optimizer not in OPTIMIZERS:
        fail(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}.")
    if lr_schedule not in LR_SCHEDULES:
        fail(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {lr_schedule!r}.")
    if drnas_reg not in ("kl", "l2"):
        fail(f"drnas_reg must be 'kl' or 'l2', got {drnas_reg!r}.")
    lr = positive_float(
        "learning_rate",
        0.025
        if optimizer == "sgd" and learning_rate is None
        else 0.001
        if learning_rate is None
        else learning_rate,
    )
    lr_min = positive_float(
        "learning_rate_min",
        (0.001 if optimizer == "sgd" else 0.0) if learning_rate_min is None else learning_rate_min,
        allow_zero=True,
    )
    if lr_min > lr:
        fail(f"learning_rate_min ({lr_min}) must not exceed learning_rate ({lr}).")
    wd = positive_float(
        "weight_decay",
        (3e-4 if optimizer == "sgd" else 0.0) if weight_decay is None else weight_decay,
        allow_zero=True,
    )
    for name, v in (
        ("momentum", momentum),
        ("bn_epsilon", bn_epsilon),
        ("arch_weight_decay", arch_weight_decay),
        ("reg_scale", reg_scale),
        ("beta_reg", beta_reg),
    ):
        positive_float(name, v, allow_zero=True)
    if not 0.0 <= float(bn_momentum) < 1.0:
        fail(f"bn_momentum must be in [0, 1), got {bn_momentum!r}.")
    positive_float("arch_learning_rate", arch_learning_rate)
    positive_float("controller_learning_rate", controller_learning_rate)
    if enas_controller != "auto" and enas_controller not in ENAS_LOGITS:
        fail(
            f"enas_controller must be 'auto' or one of {sorted(ENAS_LOGITS)}, got {enas_controller!r}."
        )
    if grad_clip is not None:
        positive_float("grad_clip", grad_clip)
    if not 0 < float(tau_min) <= float(tau_max):
        fail(
            f"GDAS temperatures need 0 < tau_min <= tau_max, got tau_min={tau_min!r}, tau_max={tau_max!r}."
        )
    if eval_batches is not None:
        eval_batches = positive_int("eval_batches", eval_batches)
    warmup_epochs = positive_int("warmup_epochs", warmup_epochs, lo=0)
    if warmup_epochs >= epochs:
        fail(
            f"warmup_epochs ({warmup_epochs}) must be smaller than epochs ({epochs}): the "
            "architecture is learnt only after the warm-up."
        )
    try:
        oss = get_space(space, None if ops is None else tuple(ops), num_blocks)
    except ValueError as e:
        fail(str(e))
    xt, yt, xv, yv = check_data(x_train, y_train, x_val, y_val, batch_size, distribute)
    n_cls = int(max(yt.max(), yv.max())) + 1
    if num_classes is not None:
        if positive_int("num_classes", num_classes) < n_cls:
            fail(
                f"num_classes={num_classes} but the labels go up to {n_cls - 1}; raise num_classes or drop it."
            )
        n_cls = int(num_classes)
    steps = len(xt) // batch_size
    settings = dict(
        space=space,
        strategy=strategy,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        channels=channels,
        num_cells=num_cells,
        num_blocks=num_blocks,
        ops=list(oss.ops),
        num_classes=n_cls,
        input_shape=list(xt.shape[1:]),
        optimizer=optimizer,
        learning_rate=lr,
        learning_rate_min=lr_min,
        lr_schedule=lr_schedule,
        momentum=float(momentum),
        weight_decay=wd,
        grad_clip=None if grad_clip is None else float(grad_clip),
        bn_momentum=float(bn_momentum),
        bn_epsilon=float(bn_epsilon),
        arch_learning_rate=float(arch_learning_rate),
        arch_weight_decay=float(arch_weight_decay),
        drnas_reg=drnas_reg,
        reg_scale=float(reg_scale),
        beta_reg=float(beta_reg),
        tau_max=float(tau_max),
        tau_min=float(tau_min),
        num_samples=num_samples,
        eval_batches=eval_batches,
        population_size=int(population_size),
        sample_size=int(sample_size),
        enas_controller_steps=int(enas_controller_steps or steps),
        warmup_epochs=warmup_epochs,
        controller_learning_rate=float(controller_learning_rate),
        enas_controller=(
            ENAS_LOGITS_FOR_SPACE[space] if enas_controller == "auto" else enas_controller
        ),
        replicas=distribute.num_replicas_in_sync if distribute is not None else 1,
    )
    data_id = fingerprint([xt, yt, xv, yv])
    say = log or (lambda _m: None)

    # -- resume -----------------------------------------------------------------------------
    ckpt_path = state_path = None
    saved = None
    if directory is not None:
        if os.path.exists(directory) and not os.path.isdir(directory):
            fail(
                f"directory {directory!r} is a file; pass a directory (new or one of an earlier search)."
            )
        os.makedirs(directory, exist_ok=True)
        ckpt_path, state_path = (
            os.path.join(directory, CHECKPOINT),
            os.path.join(directory, STATE_JSON),
        )
        if os.path.exists(ckpt_path):
            from keras_nas.oneshot.loop import Loop as _L

            try:
                saved = _L.read_state(ckpt_path)
            except (OSError, ValueError, KeyError) as e:
                fail(
                    f"{ckpt_path} is unreadable ({e}); delete it to start afresh, or use another directory."
                )
            # keep the shaping the search started with (only ENAS reads it: never a reason to
            # refuse resuming another strategy)
            if enas_controller == "auto" or strategy != "enas":
                settings["enas_controller"] = saved["settings"].get(
                    "enas_controller", SETTING_ADDED_LATER["enas_controller"]
                )
            diff = [
                k
                for k in settings
                if saved["settings"].get(k, SETTING_ADDED_LATER.get(k)) != settings[k]
            ]
            if saved.get("data") != data_id:
                diff.append("the data (x_train, y_train, x_val, y_val)")
            if diff:
                fail(
                    f"directory {directory!r} holds a search with other settings ({', '.join(diff)}); resuming would "
                    "mix them. Use the same arguments, another directory, or delete it to start afresh."
                )
            if saved.get("result") is not None:
                r = dict(saved["result"])
                say(f"search in {directory} already finished; returning its result")
                return _result(
                    oss, r, saved, epochs_this_run=0, seconds=time.time() - t0, directory=directory
                )

    # -- build ------------------------------------------------------------------------------
    keras.utils.set_random_seed(seed)
    dist = distribute or tf.distribute.get_strategy()
    with dist.scope():
        model = oss.build_supernet(
            input_shape=tuple(xt.shape[1:]),
            num_classes=n_cls,
            channels=channels,
            num_cells=num_cells,
            bn_momentum=bn_momentum,
            bn_epsilon=bn_epsilon,
        )
    options = dict(settings)
    architect = make_architect(strategy, oss, seed=seed, epochs=epochs, options=options)
    loop = Loop(
        oss,
        model,
        architect,
        (xt, yt, xv, yv),
        batch_size=batch_size,
        seed=seed,
        epochs=epochs,
        optimizer=_make_optimizer(optimizer, lr, lr_min, lr_schedule, momentum, wd),
        grad_clip=grad_clip,
        eval_batches=eval_batches,
        distribute=distribute,
        run_eagerly=run_eagerly,
    )
    trace, done, total_seconds = [], 0, 0.0
    if saved is not None:
        state = loop.restore(ckpt_path)
        trace, done, total_seconds = state["trace"], state["epochs_done"], state["total_seconds"]
        say(f"resuming the search in {directory}: {done} of {epochs} epoch(s) done")
    writer = None
    if directory is not None and tensorboard:
        writer = tf.summary.create_file_writer(os.path.join(directory, "tensorboard", "oneshot"))
    say(
        f"one-shot search: space {space} ({oss.num_edges} edges x {oss.num_ops} ops), strategy {strategy}, "
        f"{epochs} epoch(s) of {steps} step(s), batch {batch_size}, C={channels} N={num_cells}, {optimizer} lr {lr:g}"
        + (f", {settings['replicas']} replicas" if settings["replicas"] > 1 else "")
    )

    def checkpoint(result=None):
        if ckpt_path is None:
            return
        state = {
            "settings": settings,
            "data": data_id,
            "trace": trace,
            "epochs_done": done,
            "total_seconds": total_seconds + (time.time() - t0),
            "result": result,
        }
        loop.save(ckpt_path, state)
        atomic.write_text(
            state_path, json.dumps({k: v for k, v in state.items() if k != "data"}, indent=1)
        )

    # -- train --------------------------------------------------------------------------------
    run_epochs = 0
    for epoch in range(done, epochs):
        rec = loop.run_epoch(epoch)
        probs = architect.probabilities()
        derived = architect.derive()
        if probs is not None:
            rec["probabilities"] = np.round(probs, 6).tolist()
            rec["entropy"] = entropy(probs)
        if derived is not None:
            rec["derived"] = str(derived)
            rec["val_accuracy"] = loop.evaluate_arch(derived)
        trace.append(rec)
        done, run_epochs = epoch + 1, run_epochs + 1
        if writer is not None:
            _summaries(writer, rec, oss, strategy)
        say(_progress(rec, epochs))
        checkpoint()

    # -- choose --------------------------------------------------------------------------------
    arch, candidates = architect.select(loop)
    val_acc = dict(candidates).get(str(arch))
    if val_acc is None:
        val_acc = loop.evaluate_arch(arch)
    result = {
        "architecture": str(arch),
        "val_accuracy": float(val_acc),
        "candidates": [[a, float(s)] for a, s in candidates],
    }
    if writer is not None:
        with writer.as_default():
            tf.summary.text("oneshot/final_architecture", str(arch), step=epochs)
        writer.flush()
    final_total = total_seconds + (time.time() - t0)
    if directory is not None:
        from keras_nas import families

        atomic.write_text(os.path.join(directory, BEST_GENOTYPE), families.arch_to_json(arch))
        result["total_seconds"] = final_total
        checkpoint(result)
    say(f"chosen ({strategy}): {arch}  shared-weight val accuracy {val_acc:.4f}")
    state = {
        "settings": settings,
        "trace": trace,
        "epochs_done": done,
        "total_seconds": final_total,
    }
    return _result(
        oss,
        {**result, "total_seconds": final_total},
        state,
        epochs_this_run=run_epochs,
        seconds=time.time() - t0,
        directory=directory,
        arch=arch,
    )


def _result(oss, r, state, *, epochs_this_run, seconds, directory, arch=None):
    if arch is None:
        from keras_nas import families

        arch = families.parse_architecture(r["architecture"])
    return OneShotResult(
        space=state["settings"]["space"],
        strategy=state["settings"]["strategy"],
        architecture=arch,
        trace=state["trace"],
        epochs=state["epochs_done"],
        epochs_this_run=epochs_this_run,
        seconds=round(seconds, 3),
        total_seconds=round(r.get("total_seconds", seconds), 3),
        val_accuracy=r["val_accuracy"],
        candidates=[tuple(c) for c in r["candidates"]],
        settings=state["settings"],
        directory=directory,
    )


def _progress(rec, epochs) -> str:
    parts = [
        f"[epoch {rec['epoch']}/{epochs}] loss {rec['train_loss']:.4f} acc {rec['train_accuracy']:.3f}"
    ]
    if "val_accuracy" in rec:
        parts.append(f"derived val_acc {rec['val_accuracy']:.3f}")
    if "entropy" in rec:
        parts.append(f"entropy {rec['entropy']:.3f}")
    if rec.get("controller_reward") is not None:
        parts.append(f"reward {rec['controller_reward']:.3f}")
    parts.append(f"{rec['seconds']:.1f}s")
    line = " | ".join(parts)
    return line + (f"\n  derived: {rec['derived']}" if "derived" in rec else "")


def _summaries(writer, rec, oss, strategy):
    import tensorflow as tf

    step = rec["epoch"]
    with writer.as_default():
        for k in (
            "train_loss",
            "train_accuracy",
            "arch_loss",
            "val_accuracy",
            "entropy",
            "learning_rate",
            "tau",
            "controller_reward",
        ):
            if rec.get(k) is not None:
                tf.summary.scalar(f"oneshot/{k}", rec[k], step=step)
        probs = rec.get("probabilities")
        if probs is not None and strategy != "enas":
            for e, name in enumerate(oss.edge_names()):
                for k, op in enumerate(oss.ops):
                    tf.summary.scalar(f"arch/{name}/{op}", probs[e][k], step=step)
        if rec.get("derived"):
            tf.summary.text("oneshot/derived", rec["derived"], step=step)
    writer.flush()
