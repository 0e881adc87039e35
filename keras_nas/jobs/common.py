"""What the search and retraining jobs share: strategy, compile settings, accuracy."""

from __future__ import annotations

from typing import Optional


def strategy(name: str):
    """The ``--strategy`` flag's tf.distribute strategy, None for the default one."""
    from keras_nas.distribute import resolve_strategy

    s = resolve_strategy(name)
    return None if type(s).__name__ == "_DefaultDistributionStrategy" else s


def compile_model(model, learning_rate, decay_steps: Optional[int] = None):
    """Adam (cosine-decayed over ``decay_steps`` when given), sparse CE; 0.4-weighted aux loss."""
    import keras

    lr = learning_rate
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    n_out = len(model.outputs)
    loss = (
        ["sparse_categorical_crossentropy"] * n_out
        if n_out > 1
        else "sparse_categorical_crossentropy"
    )
    metrics = [["accuracy"]] + [[] for _ in range(n_out - 1)] if n_out > 1 else ["accuracy"]
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=loss,
        metrics=metrics,
        loss_weights=[1.0] + [0.4] * (n_out - 1) if n_out > 1 else None,
        jit_compile=False,
    )
    return model


def accuracy(model, ds) -> float:
    """Top-1 accuracy of ``model``'s main output on a batched ``(x, y)`` dataset."""
    import numpy as np

    correct = total = 0
    for x, y in ds:
        p = model(x, training=False)
        if isinstance(p, (list, tuple)):
            p = p[0]
        correct += int(np.sum(np.argmax(np.asarray(p), -1) == np.asarray(y)))
        total += int(len(y))
    return correct / max(total, 1)
