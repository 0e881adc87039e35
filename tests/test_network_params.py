"""Parameter counts of keras-nas networks against keras.applications, the papers and NAS-Bench-201.

Why this file exists: parameter counts are the cheapest end-to-end check that the cells,
stems and skeletons have the published structure. Models are built, never run.
"""

import csv
import random
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_nas.blocks import build_nb201_network, build_network  # noqa: E402

NB201_DIR = Path(__file__).resolve().parents[2] / "shared" / "nas-bench-201"


def shapes_only():
    """Build without initializing variables (Keras defers initialization inside a
    StatelessScope): parameter counts only need shapes, and this is 3-5x faster."""
    return keras.StatelessScope()


def trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_nasnet_mobile_matches_keras_applications_exactly():
    # keras.applications.NASNetMobile(weights=None).count_params() == 5,326,716 (Keras 3.15.1);
    # REFERENCE.md and the keras docs give the same number. Counts include BN moving statistics.
    model = build_network(
        "nasnet_a",
        input_shape=(224, 224, 3),
        num_classes=1000,
        num_cells=4,
        penultimate_filters=1056,
        stem="imagenet",
        stem_multiplier=1,
        skip_reduction=False,
    )
    assert model.count_params() == 5_326_716


def test_nasnet_mobile_filters_equivalent_to_penultimate():
    with shapes_only():
        a = build_network(
            "nasnet_a",
            input_shape=(224, 224, 3),
            num_classes=1000,
            num_cells=4,
            filters=44,
            stem="imagenet",
        )
    assert a.count_params() == 5_326_716


@pytest.mark.parametrize(
    "genotype,kwargs,published",
    [
        # NASNet paper Table 1: NASNet-A (6 @ 768) 3.3M
        ("nasnet_a", dict(num_cells=6, penultimate_filters=768), 3.3e6),
        # AmoebaNet paper: AmoebaNet-A (N=6, F=36) 3.2M
        ("amoebanet_a", dict(num_cells=6, filters=36), 3.2e6),
        # DARTS paper: 20 cells (N=6 per stack), C=36, 3.3M (without auxiliary head)
        ("darts_v2", dict(num_cells=6, filters=36), 3.3e6),
    ],
)
def test_cifar_networks_within_5_percent_of_papers(genotype, kwargs, published):
    with shapes_only():
        model = build_network(genotype, input_shape=(32, 32, 3), num_classes=10, **kwargs)
    # Measured (Keras count_params, incl. BN moving stats / trainable only):
    # NASNet-A 6@768 3,384,682 / 3,347,498; AmoebaNet-A 6@36 3,255,094 / 3,219,490;
    # DARTS-V2 C36 3,400,246 / 3,359,782. Papers count trainable (PyTorch/TF) parameters.
    for n in (model.count_params(), trainable_count(model)):
        assert abs(n - published) / published < 0.05, (genotype, n, published)


def test_aux_head_adds_second_output_and_params():
    with shapes_only():
        plain = build_network("darts_v2", num_cells=1, filters=8)
        aux = build_network("darts_v2", num_cells=1, filters=8, aux_head=True)
    assert len(aux.outputs) == 2
    c = 4 * 4 * 8  # channels after the 2nd reduction: 4 concat states x 4F
    extra = (c * 128 + 4 * 128) + (2 * 2 * 128 * 768 + 4 * 768) + (768 * 10 + 10)
    assert aux.count_params() - plain.count_params() == extra


def _nb201_rows(n=50, seed=201):
    path = NB201_DIR / "nb201.csv"
    if not path.exists():
        pytest.skip(f"NAS-Bench-201 table not found at {path} (shared data directory absent)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return random.Random(seed).sample(rows, n)


def test_nb201_params_match_benchmark():
    # NAS-Bench-201 'params' (MB) = PyTorch named parameters / 1e6: conv weights (no bias),
    # BN gamma+beta (affine) but NOT running stats, Linear weight+bias. So compare the Keras
    # *trainable* count (count_params() adds the BN moving mean/variance).
    rows = _nb201_rows()
    exact = within = 0
    for row in rows:
        with shapes_only():
            model = build_nb201_network(row["arch"])
        expected = float(row["params_m"]) * 1e6
        n = trainable_count(model)
        exact += abs(n - expected) < 1.0
        within += abs(n - expected) / expected < 0.01
        keras.backend.clear_session()
    assert within == len(rows) >= 50
    assert exact == len(rows)
