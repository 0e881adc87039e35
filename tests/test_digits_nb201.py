"""The digits NB201 ground truth: masked-supernet training equals training the real network,
train_cell is deterministic, the table loads and ranks, bad input fails clearly."""

import os

import numpy as np
import pytest

from keras_nas.benchmarks import digits_nb201 as bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "benchmarks", "data", "digits_nb201.csv")

# 3 training steps of batch 32, C=4: seconds, not minutes.
# eval_shift=1: the optional shift_accuracy stays exercised (the table's protocol has it off)
TINY = bench.Protocol(
    channels=4,
    num_cells=1,
    epochs=1,
    batch_size=32,
    train_images=96,
    learning_rate=0.05,
    eval_shift=1,
)

CELLS = [
    # every op kind, a 'none' edge
    "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
    # node 1 is zeros (only 'none' in): conv and pool of a zero node
    "|none~0|+|nor_conv_1x1~0|none~1|+|none~0|avg_pool_3x3~1|skip_connect~2|",
    # no path from input to output: the cell outputs zeros
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|none~2|",
]


def _real_model(cell, protocol, weights):
    """build_nb201_network for ``cell`` with the supernet slot's initial ``weights``."""
    import keras

    from keras_nas.blocks.network import build_nb201_network
    from keras_nas.space.nb201 import EDGES

    p = protocol
    size = bench.input_size(p)
    m = build_nb201_network(
        cell,
        input_shape=(size, size, 1),
        num_classes=10,
        channels=p.channels,
        num_cells=p.num_cells,
        logits=True,
    )

    def bn(packed, name):
        packed.affine.assign(weights[name + "/gamma_beta"])
        packed.stats.assign(weights[name + "/moving_mean_variance"])

    stem = m.get_layer("stem_conv")
    stem.kernel.assign(weights["stem/kernel"])
    bn(stem.bn, "stem/bn")
    for s in range(3):
        if s:
            r = m.get_layer(f"resblock_{s}")
            r.ka.assign(weights[f"resblock_{s}/conv_a"])
            bn(r.bna, f"resblock_{s}/bn_a")
            r.kb.assign(weights[f"resblock_{s}/conv_b"])
            bn(r.bnb, f"resblock_{s}/bn_b")
            r.kd.assign(weights[f"resblock_{s}/downsample"])
        for i in range(p.num_cells):
            layer = m.get_layer(f"cell_{s}_{i}")
            for e, ((to, frm), op) in enumerate(zip(EDGES, layer.cell.ops)):
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    pre = f"cell_{s}_{i}/edge_{frm}_{to}/{op}"
                    layer.edge_ops[e].kernel.assign(weights[pre + "/kernel"])
                    bn(layer.edge_ops[e].bn, pre + "/bn")
                else:
                    assert (
                        op == "none" or not layer.edge_ops[e].weights
                    )  # skip / pool own no weights
    last = m.get_layer("lastact_bn")
    gb, mv = weights["lastact_bn/gamma_beta"], weights["lastact_bn/moving_mean_variance"]
    last.gamma.assign(gb[0])
    last.beta.assign(gb[1])
    last.moving_mean.assign(mv[0])
    last.moving_variance.assign(mv[1])
    head = m.get_layer("predictions")
    head.kernel.assign(weights["predictions/kernel"])
    head.bias.assign(weights["predictions/bias"])
    del keras
    return m


def _train_real(model, protocol, seed):
    """The protocol's training loop, written with Keras' own Adam and cosine schedule."""
    import keras
    import tensorflow as tf

    p = protocol
    data = bench.load_data(p)
    order = bench.batch_order(seed, p)
    opt = keras.optimizers.Adam(
        learning_rate=keras.optimizers.schedules.CosineDecay(
            p.learning_rate, decay_steps=len(order)
        ),
        beta_1=p.beta_1,
        beta_2=p.beta_2,
        epsilon=p.epsilon,
    )
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for idx in order:
        x, y = data["x_train"][idx], data["y_train"][idx]
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        losses.append(float(loss))
    return np.array(losses)


# slots > 1 is checked on the plain 8x8 digits only: on the 16x16 canvas its evaluation logits drift
# from the real network's (see MaskedNB201Trainer); the table and train_cell use slots=1.
PLAIN = bench.Protocol(
    channels=4,
    num_cells=1,
    epochs=1,
    batch_size=32,
    train_images=96,
    learning_rate=0.05,
    canvas=0,
    test_copies=1,
)


@pytest.mark.parametrize("slots", [1, 3])
def test_masked_supernet_trains_like_the_real_network(slots):
    seed = 3
    cells = CELLS[:slots] if slots > 1 else CELLS[:1]
    TINY = globals()["TINY"] if slots == 1 else PLAIN
    # slots=1 is the trainer train_cell uses (cached: traced once for this file)
    trainer = bench._trainer(1, TINY) if slots == 1 else bench.MaskedNB201Trainer(slots, TINY)
    trainer.set_cells(cells, seed)
    init = [trainer.slot_weights(k) for k in range(len(cells))]
    results = trainer.train(cells, seed)
    masked_losses = trainer.last_losses  # (steps, cells)
    assert masked_losses.shape == (3, len(cells))
    data = bench.load_data(TINY)
    for k, cell in enumerate(cells):
        model = _real_model(cell, TINY, init[k])
        real_losses = _train_real(model, TINY, seed)
        np.testing.assert_allclose(
            masked_losses[:, k], real_losses, rtol=2e-4, atol=1e-5, err_msg=cell
        )
        assert len(set(np.round(real_losses, 4))) > 1  # it did train
        # predictions after training (BN moving statistics of the used ops included)
        real_logits = model(data["x_test"], training=False).numpy()
        masked_logits = trainer._eval_fn(data["x_test"]).numpy()[:, k]
        np.testing.assert_allclose(masked_logits, real_logits, rtol=1e-3, atol=1e-3, err_msg=cell)
        acc = float((real_logits.argmax(-1) == data["y_test"]).mean())
        assert abs(acc - results[k]["accuracy"]) <= 2.0 / len(data["y_test"])


def test_unused_ops_get_no_update():
    cell = "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    trainer = bench._trainer(1, TINY)
    trainer.set_cells([cell], 0)
    before = trainer.slot_weights(0)
    trainer.train([cell], 0)
    after = trainer.slot_weights(0)
    for name in before:
        if name.endswith("/kernel") and "/edge_" in name:
            changed = not np.array_equal(before[name], after[name])
            assert changed == ("edge_2_3/nor_conv_1x1" in name), name


def test_train_cell_is_deterministic_for_a_seed():
    cell = CELLS[0]
    a = bench.train_cell(cell, 7, protocol=TINY)
    b = bench.train_cell(bench.parse_cell(cell), 7, protocol=TINY)
    assert set(a) >= {"accuracy", "val_accuracy", "shift_accuracy", "epochs", "seconds"}
    assert a["epochs"] == 1 and a["seconds"] > 0
    for k in ("accuracy", "val_accuracy", "shift_accuracy", "train_loss"):
        assert a[k] == b[k] and np.isfinite(a[k]), k
    c = bench.train_cell(cell, 8, protocol=TINY)
    assert c["train_loss"] != a["train_loss"]  # another seed is another run


def test_bad_input_errors():
    with pytest.raises(ValueError, match="Not a NAS-Bench-201 cell string"):
        bench.train_cell("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", 0, protocol=TINY)
    with pytest.raises(ValueError, match="cell string"):
        bench.parse_cell("resnet")
    with pytest.raises(ValueError, match="6 op names|6 edges"):
        bench.parse_cell(["none"] * 5)
    with pytest.raises(ValueError, match="seed must be an integer"):
        bench.train_cell(CELLS[0], "0", protocol=TINY)
    with pytest.raises(ValueError, match="image_size"):
        bench.Protocol(image_size=10)
    with pytest.raises(ValueError, match="channels"):
        bench.Protocol(channels=0)
    with pytest.raises(ValueError, match="eval_shift"):
        bench.Protocol(eval_shift=16)
    with pytest.raises(ValueError, match="canvas"):
        bench.Protocol(canvas=6)
    with pytest.raises(ValueError, match="canvas"):
        bench.Protocol(canvas=14)
    with pytest.raises(ValueError, match="noise"):
        bench.Protocol(noise=-0.1)
    with pytest.raises(ValueError, match="test_copies"):
        bench.Protocol(test_copies=0)


def test_translated_digits_are_the_digits_placed_on_a_fixed_canvas():
    plain = bench.load_data(bench.Protocol(canvas=0, test_copies=1))
    p = bench.Protocol(canvas=16, test_copies=2, train_copies=1)
    d = bench.load_data.__wrapped__(p)
    again = bench.load_data.__wrapped__(bench.Protocol(canvas=16, test_copies=2, train_copies=1))
    assert d["x_train"].shape == (len(plain["y_train"]), 16, 16, 1)
    assert d["x_test"].shape == (2 * len(plain["y_test"]), 16, 16, 1)
    np.testing.assert_array_equal(d["y_test"], np.tile(plain["y_test"], 2))
    for k in d:  # a dataset, not an augmentation: the same placement every time
        np.testing.assert_array_equal(d[k], again[k])
    offsets = set()
    for i in range(40):  # every placed image is the digit inside one 8x8 window, zeros elsewhere
        img, digit = d["x_train"][i, ..., 0], plain["x_train"][i, ..., 0]
        found = [
            (r, c)
            for r in range(9)
            for c in range(9)
            if np.array_equal(img[r : r + 8, c : c + 8], digit) and img.sum() == digit.sum()
        ]
        assert found, f"image {i} is not its digit placed on the canvas"
        offsets.add(found[0])
    assert len(offsets) > 10  # placements vary
    noisy = bench.load_data.__wrapped__(bench.Protocol(canvas=16, test_copies=2, noise=0.1))
    diff = noisy["x_train"] - d["x_train"]
    assert 0.09 < diff.std() < 0.11


def _write_table(path, accs):
    from keras_nas.space.nb201 import NB201_OPS, NB201Cell

    lines = ["arch_index,arch,accuracy_seed0,accuracy_seed1,accuracy_mean"]
    for i, a in enumerate(accs):
        cell = NB201Cell([NB201_OPS[(i // 5**e) % 5] for e in range(6)])
        lines.append(f"{i},{cell},{a},{a},{a}")
    path.write_text("\n".join(lines) + "\n")


def test_load_table_and_percentile(tmp_path):
    p = tmp_path / "t.csv"
    _write_table(p, [0.1, 0.5, 0.5, 0.9])
    t = bench.load_table(str(p))
    assert len(t) == 4
    assert t.percentile(0.5) == 50.0  # one below, two tied (half each)
    assert t.percentile(0.95) == 100.0
    assert t.percentile(0.0) == 0.0
    assert t.percentile(0.7) == 75.0
    assert t.percentile(0.1) == 12.5
    row = t.row("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert row["accuracy_mean"] == 0.1 and row["arch_index"] == 0
    assert "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|" in t
    with pytest.raises(KeyError, match="train_cell"):
        t.row("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="finite"):
        t.percentile(float("nan"))
    with pytest.raises(ValueError, match="number"):
        t.percentile("high")
    assert t.percentile(0.5, column="accuracy_seed0") == 50.0
    with pytest.raises(ValueError, match="no column"):
        t.percentile(0.5, column="shift_accuracy_mean")


def test_shifted_test_images():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    s = bench.shifted(x, 1)
    assert s.shape == (8, 4, 4, 1)
    np.testing.assert_array_equal(s[0, 1:], x[0, :-1])  # down
    assert (s[0, 0] == 0).all()
    np.testing.assert_array_equal(s[6, :, :-1], x[0, :, 1:])  # left


def test_load_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="digits_nb201.py"):
        bench.load_table(str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,0.1\n")
    with pytest.raises(ValueError, match="accuracy_mean"):
        bench.load_table(str(bad))
    bad.write_text("arch,accuracy_mean\n|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|,0.1\n")
    with pytest.raises(ValueError, match="line 2"):
        bench.load_table(str(bad))
    bad.write_text("arch,accuracy_mean\n")
    with pytest.raises(ValueError, match="no rows"):
        bench.load_table(str(bad))


@pytest.mark.skipif(
    not os.path.isfile(TABLE), reason="benchmarks/data/digits_nb201.csv not generated"
)
def test_committed_table():
    import json

    t = bench.load_table(TABLE)
    summary = json.load(open(os.path.splitext(TABLE)[0] + ".json"))
    assert len(t) == summary["cells"]
    # a partial table (run still going) says so in its summary and in benchmarks/README.md
    assert len(t) >= (300 if summary["complete"] else 100)
    archs = [r["arch"] for r in t]
    assert len(set(archs)) == len(archs)
    acc = t.accuracies()
    assert ((acc >= 0) & (acc <= 1)).all()
    for r in t:
        assert r["accuracy_mean"] == pytest.approx(
            (r["accuracy_seed0"] + r["accuracy_seed1"]) / 2, abs=1e-6
        )
