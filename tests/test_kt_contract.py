"""keras-nas tuners behave like kt.RandomSearch where keras-tuner's own contract says so
(issue #10, items 1-4 and 9-11): each case failed on the code before the fix."""

import errno
import math

import pytest

kt = pytest.importorskip("keras_tuner")

import keras  # noqa: E402

import keras_nas  # noqa: E402
from keras_nas.tuning.failures import failure_reason  # noqa: E402
from keras_nas.tuning.oracle import AgingEvolutionOracle, ReinforceOracle  # noqa: E402
from keras_nas.tuning.tuners import AgingEvolution, RandomArchitectureSearch, ReinforceSearch  # noqa: E402

OBJ = kt.Objective("score", "max")


def _build(hp):
    hp.Choice("a", [1, 2, 3, 4])
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile("sgd", "mse")
    return m


class Scored(kt.HyperModel):
    """A HyperModel whose fit returns a given score per value of 'a' (no training)."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def build(self, hp):
        return _build(hp)

    def fit(self, hp, model, *a, **k):
        return {"score": self.scores[hp.get("a")]}


@pytest.mark.parametrize("cls", [AgingEvolution, ReinforceSearch, RandomArchitectureSearch])
def test_no_hypermodel_is_refused_at_construction(cls, tmp_path):
    with pytest.raises(ValueError, match="hypermodel=None"):
        cls(objective=OBJ, max_trials=2, directory=str(tmp_path))

    class Custom(cls):  # defining the space in run_trial is allowed, as in keras-tuner
        def run_trial(self, trial, *a, **k):
            return {"score": float(trial.hyperparameters.Int("x", 0, 3))}

    Custom(objective=OBJ, max_trials=2, directory=str(tmp_path), project_name="c").search(verbose=0)


def test_exhausted_space_ends_the_search(tmp_path):
    tuner = AgingEvolution(
        Scored({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4}),
        objective=OBJ,
        max_trials=15,
        directory=str(tmp_path),
        population_size=2,
        sample_size=2,
    )
    tuner.search(verbose=0)
    assert len(tuner.oracle.trials) == 4  # keras-tuner stops after the 4 configurations too


def test_keras_tuner_positional_order(tmp_path):
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2])
    tuner = AgingEvolution(_build, OBJ, 5, 7, hp, directory=str(tmp_path))
    assert tuner.oracle.seed == 7 and tuner.oracle.max_trials == 5
    assert "a" in tuner.oracle.hyperparameters.values
    oracle = AgingEvolutionOracle(OBJ, 5, 11)
    assert oracle.seed == 11
    with pytest.raises(TypeError):
        AgingEvolutionOracle(
            OBJ, 5, 11, None, True, True, 0, 3, 10
        )  # population_size is keyword-only


@pytest.mark.parametrize(
    "make",
    [
        lambda d: ReinforceSearch(_build, objective=OBJ, directroy=d),
        lambda d: AgingEvolution(_build, objective=OBJ, directory=d, populaton_size=3),
        lambda d: ReinforceOracle(objective=OBJ, learning_rat=0.1),
    ],
)
def test_unknown_keyword_names_the_class_and_the_valid_ones(make, tmp_path):
    with pytest.raises(TypeError) as info:
        make(str(tmp_path))
    msg = str(info.value)
    assert "unexpected keyword argument" in msg and "valid keyword arguments:" in msg
    assert any(
        name in msg for name in ("ReinforceSearch()", "AgingEvolution()", "ReinforceOracle()")
    )
    assert "Controller" not in msg.split("valid")[0]  # reported against what the user called


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_objective_fails_the_trial_with_a_reason(bad, tmp_path):
    tuner = RandomArchitectureSearch(
        Scored({1: 0.5, 2: bad, 3: 0.25, 4: 0.75}),
        objective=OBJ,
        max_trials=4,
        directory=str(tmp_path),
        seed=0,
        max_consecutive_failed_trials=None,
    )
    tuner.search(verbose=0)
    by_a = {t.hyperparameters.get("a"): t for t in tuner.oracle.trials.values()}
    assert by_a[2].status == "FAILED"
    assert "not finite" in failure_reason(by_a[2])
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.hyperparameters.get("a") == 4  # never the non-finite trial


def test_full_disk_stops_the_search_and_resume_reruns_the_trial(tmp_path):
    calls = []

    class DiskFull(Scored):
        full = True

        def fit(self, hp, model, *a, **k):
            calls.append(hp.get("a"))
            if DiskFull.full and len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().fit(hp, model, *a, **k)

    hm = DiskFull({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4})
    kw = dict(objective=OBJ, max_trials=3, directory=str(tmp_path), project_name="p", seed=1)
    with pytest.raises(Exception, match="machine failed, not the architecture.*No space left"):
        RandomArchitectureSearch(hm, **kw).search(verbose=0)
    DiskFull.full = False
    tuner = RandomArchitectureSearch(hm, **kw)
    tuner.search(verbose=0)
    trials = tuner.oracle.trials
    assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials.values())
    assert calls[2] == calls[1]  # the interrupted trial ran again, with the same values


def test_unbuildable_defaults_are_a_failed_trial_not_a_constructor_error(tmp_path):
    def build(hp):
        width = hp.Int("width", 0, 3)
        if width == 0:  # the default (min_value) cannot be built
            raise ValueError("width 0 is not a network")
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(width)])
        m.compile("sgd", "mse")
        return m

    with pytest.warns(UserWarning, match="default hyperparameter values could not be built"):
        tuner = RandomArchitectureSearch(
            build,
            objective="loss",
            max_trials=6,
            directory=str(tmp_path),
            seed=3,
            max_consecutive_failed_trials=None,
        )
    import numpy as np

    x = np.zeros((4, 2), "float32")
    tuner.search(x, x[:, :1], epochs=1, verbose=0)
    statuses = {t.hyperparameters.get("width"): t.status for t in tuner.oracle.trials.values()}
    assert statuses.get(0, "FAILED") == "FAILED"
    assert any(s == "COMPLETED" for s in statuses.values())
    failed = [t for t in tuner.oracle.trials.values() if t.status == "FAILED"]
    assert all("width 0 is not a network" in failure_reason(t) for t in failed)


def test_keras_nas_names_stay():
    assert (
        keras_nas.AgingEvolution is AgingEvolution and keras_nas.ReinforceSearch is ReinforceSearch
    )


def test_seed_zero_is_a_seed(tmp_path):
    """keras-tuner turns seed=0 into a random seed; a keras-nas search with seed=0 is reproducible."""
    runs = []
    for d in ("a", "b"):
        tuner = RandomArchitectureSearch(
            Scored({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4}),
            objective=OBJ,
            max_trials=3,
            seed=0,
            directory=str(tmp_path / d),
            allow_duplicates=True,
        )
        assert tuner.oracle.seed == 0
        tuner.search(verbose=0)
        runs.append([t.hyperparameters.get("a") for t in tuner.oracle.trials.values()])
    assert runs[0] == runs[1]
