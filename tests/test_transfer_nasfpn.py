"""NAS-FPN search space (decode/encode, published spec) and decoder shapes."""

import random

import keras
import pytest

from keras_nas.space.base import SearchSpace, SpaceError
from keras_nas.transfer import nasfpn


def test_published_spec_round_trips_through_space():
    space = nasfpn.NASFPNSpace(num_cells=7)
    assert isinstance(space, SearchSpace)
    values = space.encode(nasfpn.NASFPN_SPEC)
    assert values["output_levels"] == "3,4,5,7,6"
    assert space.decode(values) == nasfpn.NASFPN_SPEC


def test_random_samples_decode_to_valid_specs():
    space = nasfpn.NASFPNSpace(num_cells=7)
    rng = random.Random(0)
    for _ in range(50):
        spec = space.decode(space.sample(rng))
        assert len(spec) == 7
        assert sorted(c.level for c in spec[-5:]) == [3, 4, 5, 6, 7]
        assert [c.is_output for c in spec] == [False, False, True, True, True, True, True]
        assert space.encode(spec) == space.check_values(space.encode(spec))


def test_space_registers_with_keras_tuner():
    kt = pytest.importorskip("keras_tuner")
    space = nasfpn.NASFPNSpace(num_cells=5, min_level=3, max_level=5)
    hp = kt.HyperParameters()
    values = space.register(hp)
    assert space.decode(values)  # defaults (first options) form a valid spec


def test_bad_specs_are_rejected_with_reasons():
    with pytest.raises(SpaceError, match="out of range"):
        nasfpn.validate_spec(
            [nasfpn.MergingCell(4, "sum", (0, 9), True)] + list(nasfpn.NASFPN_SPEC[1:])
        )
    with pytest.raises(SpaceError, match="each level"):
        nasfpn.validate_spec(
            nasfpn.NASFPN_SPEC[:-1] + (nasfpn.MergingCell(5, "sum", (0, 1), True),)
        )
    with pytest.raises(SpaceError, match="num_cells"):
        nasfpn.NASFPNSpace(num_cells=3)


def test_decoder_shapes_and_repeats():
    feats = {3: keras.Input((8, 8, 12)), 4: keras.Input((4, 4, 20)), 5: keras.Input((2, 2, 24))}
    out = nasfpn.nasfpn_decoder(feats, filters=16, num_repeats=2)
    assert {lv: tuple(t.shape) for lv, t in out.items()} == {
        3: (None, 8, 8, 16),
        4: (None, 4, 4, 16),
        5: (None, 2, 2, 16),
        6: (None, 1, 1, 16),
        7: (None, 1, 1, 16),
    }
    model = keras.Model(list(feats.values()), list(out.values()))
    n_attn = sum(isinstance(l, nasfpn.GlobalAttention) for l in model.layers)
    assert n_attn == 2 * 4  # 4 attention cells per repeat, own weights per repeat
