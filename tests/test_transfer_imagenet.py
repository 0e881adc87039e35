"""N@P notation, ImageNet-layout networks and compound scaling."""

import pytest

from keras_nas.transfer import imagenet as im


def test_parse_notation():
    s = im.parse_notation("4@1056")
    assert (s.num_cells, s.penultimate_filters, s.resolution, s.stem) == (4, 1056, 224, "imagenet")
    assert s.filters() == 44 and s.notation == "4@1056"
    assert im.parse_notation(" 6 @ 4032 ", 331).filters() == 168
    for bad in ("4x1056", "@1056", "0@96", ""):
        with pytest.raises(ValueError, match="N@P|positive"):
            im.parse_notation(bad)


def test_compound_scale_follows_efficientnet_coefficients():
    base = im.NetworkSize(4, 1056, 224)
    assert im.compound_scale(base, 0) == base
    s1 = im.compound_scale(base, 1)
    assert s1.num_cells == 5  # ceil(4 * 1.2)
    assert s1.penultimate_filters == 24 * round(44 * 1.1)  # P stays a multiple of 24
    assert s1.resolution == 256  # 224 * 1.15 = 257.6 -> multiple of 8
    fam = im.scaling_family("2@384", phis=(0, 1, 2, 3))
    for a, b in zip(fam, fam[1:]):
        assert (
            b.num_cells >= a.num_cells
            and b.penultimate_filters > a.penultimate_filters
            and b.resolution > a.resolution
        )
    assert im.flops_multiplier(1) == pytest.approx(1.92, abs=0.01)
    # move a CIFAR search-size network to ImageNet
    s = im.compound_scale(im.NetworkSize(2, 384, 32, "cifar"), 1, resolution=224, stem="imagenet")
    assert (s.stem, s.resolution, s.num_cells) == ("imagenet", 256, 3)


def test_build_imagenet_network_small():
    from keras_nas import zoo

    m = im.build_imagenet_network(zoo.NASNET_A, "1@96", resolution=64, num_classes=7)
    assert m.output.shape == (None, 7)
    assert m.input.shape == (None, 64, 64, 3)
    assert m.get_layer("normal_cell_4").output.shape[-1] == 96  # penultimate filters P
    with pytest.raises(ValueError, match="multiple of"):
        im.build_imagenet_network(zoo.NASNET_A, "1@100", resolution=64)
