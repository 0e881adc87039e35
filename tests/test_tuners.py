"""Tiny real keras-tuner searches with the keras-nas tuner classes (1 epoch, tiny data/models)."""

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")
keras = pytest.importorskip("keras")

import keras_nas  # noqa: E402
from keras_nas.tuning.hypermodels import MacroHyperModel, NASNetHyperModel, NB201HyperModel  # noqa: E402
from keras_nas.tuning.tuners import AgingEvolution, RandomArchitectureSearch, ReinforceSearch  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")[:240]
    y = y[:240].astype("int32")
    return (x[:160], y[:160]), (x[160:], y[160:])


def build_model(hp):
    """What a keras-tuner user writes (with a conditional scope)."""
    model = keras.Sequential([keras.Input((64,))])
    kind = hp.Choice("kind", ["wide", "deep"])
    with hp.conditional_scope("kind", ["wide"]):
        if kind == "wide":
            model.add(keras.layers.Dense(hp.Int("units", 16, 64, step=16), activation="relu"))
    with hp.conditional_scope("kind", ["deep"]):
        if kind == "deep":
            for i in range(hp.Int("layers", 1, 2)):
                model.add(keras.layers.Dense(8, activation="relu"))
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(0.1))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = hp.Float("lr", 1e-3, 1e-2, sampling="log")
    model.compile(
        keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _search(tuner, data, **kw):
    (x, y), (xv, yv) = data
    tuner.search(x, y, epochs=1, batch_size=64, validation_data=(xv, yv), verbose=0, **kw)
    trials = list(tuner.oracle.trials.values())
    assert trials and all(t.status == "COMPLETED" for t in trials), [
        (t.status, t.message) for t in trials
    ]
    return trials


@pytest.mark.parametrize(
    "cls,extra",
    [
        (AgingEvolution, {"population_size": 2, "sample_size": 2}),
        (ReinforceSearch, {"units": 8, "batch_size": 2}),
        (RandomArchitectureSearch, {}),
    ],
)
def test_swap_for_random_search(tmp_path, digits, cls, extra):
    """Same arguments as kt.RandomSearch (+ the algorithm's own)."""
    if cls is ReinforceSearch:
        pytest.importorskip("keras_nas.controllers.reinforce")
    n = 3 if cls is AgingEvolution else 2
    tuner = cls(
        build_model,
        objective="val_accuracy",
        max_trials=n,
        seed=1,
        directory=str(tmp_path),
        project_name="p",
        **extra,
    )
    trials = _search(tuner, digits)
    assert len(trials) == n
    assert len({tuple(sorted(t.hyperparameters.values.items())) for t in trials}) == n
    for t in trials:
        v = t.hyperparameters.values
        assert ("units" in v) == (v["kind"] == "wide") and ("layers" in v) == (v["kind"] == "deep")
    assert tuner.get_best_models(1)[0].output_shape == (None, 10)
    assert (
        len(tuner.oracle.end_order) == n and not tuner.oracle.pending_values()
    )  # every trial reported once


def test_resume_with_overwrite_false(tmp_path, digits):
    kw = dict(
        objective="val_accuracy",
        seed=3,
        directory=str(tmp_path),
        project_name="p",
        population_size=2,
    )
    t1 = AgingEvolution(build_model, max_trials=1, **kw)
    _search(t1, digits)
    state1 = t1.oracle.controller.get_state()
    t2 = AgingEvolution(build_model, max_trials=2, **kw)  # same project, larger budget
    assert t2.oracle.controller.get_state() == state1
    trials = _search(t2, digits)
    assert len(trials) == 2 and t2.oracle.controller.num_observed == 2


def test_nasnet_hypermodel_search_with_params_cost(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 32).astype("int32")
    hm = NASNetHyperModel((8, 8, 1), 3, num_cells=1, filters=4, num_blocks=1)
    tuner = keras_nas.AgingEvolution(
        hm,
        objective="accuracy",
        max_trials=2,
        seed=0,
        directory=str(tmp_path),
        project_name="p",
        cost_metric="params",
        cost_target=2000,
        warm_start=[
            keras_nas.Genotype.parse(
                "normal=sep_conv_3x3~0+identity~1/2;reduce=max_pool_3x3~0+sep_conv_3x3~1/2"
            )
        ],
    )
    # the tuner handed the oracle the decision kinds (AmoebaNet mutations)
    assert {p.kind for p in tuner.oracle.param_space()} == {"input", "op"}
    tuner.search(x, y, epochs=1, batch_size=32, verbose=0)  # no validation pass: one trace less
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    g = hm.genotype(trials[0])
    assert str(g) == "normal=sep_conv_3x3~0+identity~1/2;reduce=max_pool_3x3~0+sep_conv_3x3~1/2"
    for t in trials:
        assert t.metrics.get_last_value("params") > 0
    front = tuner.pareto_front()
    assert 1 <= len(front) <= 2 and all(q["cost"] > 0 for q in front)
    m = tuner.oracle.population[0]
    t0 = trials[0]
    assert m["reward"] == pytest.approx(
        t0.score * (t0.metrics.get_last_value("params") / 2000) ** -0.07
    )


def test_other_hypermodels_build(tmp_path):
    nb = NB201HyperModel((8, 8, 3), 4, channels=4, num_cells=1)
    hp = kt.HyperParameters()
    model = nb.build(hp)
    assert model.output_shape == (None, 4) and len(hp.space) == 6
    assert str(nb.genotype(hp)) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert set(nb.decision_kinds.values()) == {"op"}
    mac = MacroHyperModel((8, 8, 3), 4, num_layers=2, filters=(4, 8))
    hp2 = kt.HyperParameters()
    assert mac.build(hp2).output_shape == (None, 4)
    assert len(mac.genotype(hp2)) == 2
    assert keras_nas.NASNetHyperModel is NASNetHyperModel


def test_plain_kt_tuner_with_keras_nas_oracle(tmp_path, digits):
    """The oracles also plug into keras_tuner.Tuner directly."""
    from keras_nas.tuning.oracle import AgingEvolutionOracle

    oracle = AgingEvolutionOracle(objective="val_accuracy", max_trials=2, population_size=2, seed=4)
    tuner = kt.Tuner(
        oracle=oracle, hypermodel=build_model, directory=str(tmp_path), project_name="p"
    )
    trials = _search(tuner, digits)
    assert len(trials) == 2 and oracle.controller.num_observed == 2
