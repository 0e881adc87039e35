"""NASBench201 tables, look-ups and short simulated searches through real keras-tuner Oracles."""

import functools
import os
import shutil

import pytest

from keras_nas.benchmarks import NASBench201
from keras_nas.benchmarks.nas_bench_201 import BUDGETS, BenchmarkDataError
from keras_nas.space.nb201 import NB201Cell, NB201Space

TABLE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "nas-bench-201"
)
HAVE_TABLES = os.path.isfile(os.path.join(TABLE_DIR, "nb201.csv")) and os.path.isfile(
    os.path.join(TABLE_DIR, "nb201_hp12.csv")
)
needs_tables = pytest.mark.skipif(
    not HAVE_TABLES,
    reason=f"NAS-Bench-201 tables not found in {os.path.abspath(TABLE_DIR)} (the repo's ../shared)",
)
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def bench():
    return NASBench201(TABLE_DIR)


def test_bad_directory_and_missing_file(tmp_path):
    with pytest.raises(BenchmarkDataError, match="does not exist"):
        NASBench201(tmp_path / "nope")
    (tmp_path / "nb201_hp12.csv").write_text("arch_index,arch\n")
    with pytest.raises(BenchmarkDataError, match="nb201.csv"):
        NASBench201(tmp_path)


@needs_tables
def test_missing_column_is_named(tmp_path):
    shutil.copy(os.path.join(TABLE_DIR, "nb201.csv"), tmp_path / "nb201.csv")
    with open(os.path.join(TABLE_DIR, "nb201_hp12.csv")) as f:
        lines = [next(f) for _ in range(3)]
    header = lines[0].strip().split(",")
    drop = header.index("cifar100_valid_12ep")
    rows = [
        ",".join(x for j, x in enumerate(line.strip().split(",")) if j != drop) for line in lines
    ]
    (tmp_path / "nb201_hp12.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(BenchmarkDataError, match="cifar100_valid_12ep"):
        NASBench201(tmp_path)


@needs_tables
def test_queries(bench):
    assert len(bench) == 15625
    i = bench.index_of(BEST)
    assert i == 6111
    assert bench.index_of(NB201Cell.parse(BEST)) == 6111
    assert bench.index_of(NB201Space().encode(BEST)) == 6111
    assert bench.query(BEST, "cifar10") == pytest.approx(94.3733, abs=1e-3)
    assert bench.best("cifar10") == (6111, pytest.approx(94.3733, abs=1e-3))
    assert bench.query(6111, "cifar10", split="valid") == pytest.approx(91.6067, abs=1e-3)
    assert bench.best("cifar100")[1] == pytest.approx(73.5133, abs=1e-3)
    assert bench.best("ImageNet16-120")[1] == pytest.approx(47.3111, abs=1e-3)
    assert bench.query(BEST, "cifar10", epochs=12) < bench.query(BEST, "cifar10")
    assert bench.search_signal(BEST, "cifar10") == bench.query(
        BEST, "cifar10", epochs=12, split="valid"
    )
    # cost = 12 train epochs + one validation pass, ~113 s on average (SOURCE.md)
    assert 30 < bench.cost(BEST, "cifar10") < 250
    assert bench.cost(BEST, "cifar100") > bench.cost(BEST, "cifar10")
    for s in bench.arch_strings[:50]:
        assert str(NB201Cell.parse(s)) == s and bench.arch_strings[bench.index_of(s)] == s
    with pytest.raises(ValueError, match="epochs"):
        bench.query(BEST, "cifar10", epochs=50)
    with pytest.raises(ValueError, match="dataset"):
        bench.query(BEST, "svhn")


@needs_tables
def test_short_search_with_each_oracle(bench, tmp_path):
    from keras_nas.tuning.oracle import AgingEvolutionOracle, RandomOracle, ReinforceOracle

    factories = {
        "rs": functools.partial(RandomOracle, allow_duplicates=True),
        "rea": functools.partial(
            AgingEvolutionOracle,
            population_size=4,
            sample_size=2,
            identity_prob=0.0,
            allow_duplicates=True,
        ),
        "reinforce": functools.partial(
            ReinforceOracle,
            learning_rate=0.01,
            baseline_decay=0.9,
            batch_size=2,
            units=16,
            allow_duplicates=True,
        ),
    }
    budget = 1500.0  # ~13 evaluations
    for name, f in factories.items():
        r = bench.simulate(f, "cifar10", time_budget=budget, seed=3, directory=str(tmp_path / name))
        assert 5 <= r.num_trials <= 40 and r.simulated_time <= budget
        assert r.test_accuracy == bench.query(r.best_index, "cifar10")
        assert set(r.results) == {
            f"{d}_{s}" for d in ("cifar10", "cifar100", "imagenet16") for s in ("valid", "test")
        }
        assert r.overhead_s > 0
        # the oracle really wrote its files (keras-tuner lifecycle, write_files=True by default)
        assert any("oracle.json" in files for _, _, files in os.walk(tmp_path / name)), name
        # same seed, same search (reproducible oracles), also with the file writes patched out
        r2 = bench.simulate(
            f, "cifar10", time_budget=budget, seed=3, write_files=False, include_overhead=True
        )
        assert r2.best_index == r.best_index and r2.num_trials in (
            r.num_trials,
            r.num_trials - 1,
        ), name
    assert BUDGETS["cifar10"] == 12000.0
