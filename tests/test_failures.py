"""Failed trials (architecture cannot be built, NaN loss, out of memory): FAILED with a one-line
reason, never an evolution parent, a defined REINFORCE update, and the search goes on;
``max_consecutive_failed_trials`` ends a search that only fails, saying why."""

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")
keras = pytest.importorskip("keras")

from keras_nas.tuning.failures import failure_reason  # noqa: E402
from keras_nas.tuning.tuners import AgingEvolution, ReinforceSearch  # noqa: E402

KINDS = ["ok", "build_error", "nan", "oom"]


class OOM(Exception):
    """Stands in for tf.errors.ResourceExhaustedError (matched by name)."""


OOM.__name__ = "ResourceExhaustedError"


class HM(kt.HyperModel):
    def build(self, hp):
        kind = hp.Choice("kind", KINDS)
        if kind == "build_error":
            raise ValueError("input 4x4 is too small for 3 reductions")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), keras.layers.Dense(1)])
        if kind == "nan":
            model.compile("sgd", loss=lambda y, p: keras.ops.log(-1.0 - keras.ops.abs(p)) + 0 * y)
        else:
            model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, *a, **k):
        if hp.get("kind") == "oom":
            raise OOM("OOM when allocating tensor with shape[4096,4096,64]")
        return model.fit(*a, **k)


def _data():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    return x, x[:, :1]


def _search(cls, tmp_path, max_trials, warm, **kw):
    x, y = _data()
    extra = (
        {"population_size": 4, "sample_size": 2, "warm_start": warm}
        if cls is AgingEvolution
        else {"units": 8}
    )
    tuner = cls(
        HM(),
        objective=kt.Objective("loss", "min"),
        max_trials=max_trials,
        directory=str(tmp_path),
        project_name="p",
        seed=2,
        **extra,
        **kw,
    )
    tuner.search(x, y, epochs=2, batch_size=8, verbose=0)
    return tuner


def test_failed_trials_recorded_with_reason_never_parents(tmp_path):
    warm = [{"kind": k} for k in KINDS]
    tuner = _search(AgingEvolution, tmp_path, 6, warm, max_consecutive_failed_trials=None)
    o = tuner.oracle
    by_kind = {}
    for t in o.trials.values():
        by_kind.setdefault(t.hyperparameters.values["kind"], []).append(t)
    reasons = {k: failure_reason(ts[0]) for k, ts in by_kind.items()}
    assert all(t.status == "COMPLETED" for t in by_kind["ok"])
    for k in ("build_error", "nan", "oom"):
        assert all(t.status == "FAILED" for t in by_kind[k]), (k, [t.status for t in by_kind[k]])
    assert (
        "could not be built" in reasons["build_error"]
        and "too small for 3 reductions" in reasons["build_error"]
    )
    assert "loss became nan" in reasons["nan"].lower()
    assert "out of memory" in reasons["oom"] and "OOM when allocating" in reasons["oom"]
    # the reason is the last line of trial.message, as saved in trial.json
    reloaded = kt.engine.trial.Trial.load(
        str(tmp_path / "p" / f"trial_{by_kind['nan'][0].trial_id}" / "trial.json")
    )
    assert failure_reason(reloaded) == reasons["nan"]
    # never a parent: the population holds finished members only
    assert {m["values"]["kind"] for m in o.population} == {"ok"}
    assert o.controller.num_failed == sum(
        len(by_kind.get(k, [])) for k in ("build_error", "nan", "oom")
    )


def test_reinforce_update_defined_for_failures(tmp_path):
    # 4 configurations, 5 trials: repeats allowed (an exhausted space would stop the search, issue #10.2)
    tuner = _search(
        ReinforceSearch,
        tmp_path,
        5,
        None,
        max_consecutive_failed_trials=None,
        allow_duplicates=True,
    )
    o = tuner.oracle
    assert o.controller.num_observed == 5 and not o.pending_values()
    arrays = o.controller.get_arrays()
    assert all(np.all(np.isfinite(np.asarray(v))) for v in arrays.values())


def test_search_that_only_fails_stops_and_says_why(tmp_path):
    warm = [{"kind": "build_error"}] * 4
    with pytest.raises(RuntimeError) as info:
        _search(
            AgingEvolution,
            tmp_path,
            10,
            warm,
            max_consecutive_failed_trials=2,
            allow_duplicates=True,
            identity_prob=0.0,
        )
    msg = str(info.value)
    assert "the last 2 trials failed" in msg and "max_consecutive_failed_trials=2" in msg
    assert "could not be built" in msg and "too small for 3 reductions" in msg
