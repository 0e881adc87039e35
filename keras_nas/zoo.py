"""Published cell genotypes, in keras-nas's (NASNet reference code) index convention.

0 = previous cell, 1 = the cell before it, 2.. = blocks. Concat lists are the ones the
reference implementations hard-code (see each entry's source).
"""

from keras_nas.space.genotype import CellGenotype, Genotype
from keras_nas.space.ops import ENAS_OPS

# Zoph, Vasudevan, Shlens, Le. "Learning Transferable Architectures for Scalable Image
# Recognition", CVPR 2018, Fig. 4; reference: tensorflow/models research/slim/nets/nasnet
# (nasnet_utils.NasNetANormalCell / NasNetAReductionCell) and keras.applications.NASNet.
NASNET_A = Genotype(
    CellGenotype.parse(
        "sep_conv_5x5~0+sep_conv_3x3~1|sep_conv_5x5~1+sep_conv_3x3~1|avg_pool_3x3~0+identity~1|"
        "avg_pool_3x3~1+avg_pool_3x3~1|sep_conv_3x3~0+identity~0/1,2,3,4,5,6"
    ),
    CellGenotype.parse(
        "sep_conv_5x5~0+sep_conv_7x7~1|max_pool_3x3~0+sep_conv_7x7~1|avg_pool_3x3~0+sep_conv_5x5~1|"
        "identity~3+avg_pool_3x3~2|sep_conv_3x3~2+max_pool_3x3~0/3,4,5,6"
    ),
    name="NASNet-A",
)

# Real, Aggarwal, Huang, Le. "Regularized Evolution for Image Classifier Architecture
# Search", AAAI 2019, Fig. 4; reference: tensorflow/tpu models/official/amoeba_net/model_specs.py.
AMOEBANET_A = Genotype(
    CellGenotype.parse(
        "avg_pool_3x3~0+max_pool_3x3~0|sep_conv_3x3~1+identity~1|identity~0+avg_pool_3x3~1|"
        "sep_conv_3x3~0+sep_conv_5x5~2|avg_pool_3x3~5+sep_conv_3x3~0/1,3,4,6"
    ),
    CellGenotype.parse(
        "sep_conv_3x3~1+avg_pool_3x3~0|max_pool_3x3~0+sep_conv_7x7~2|max_pool_3x3~1+max_pool_3x3~0|"
        "sep_conv_3x3~4+conv_1x7_7x1~0|avg_pool_3x3~1+sep_conv_7x7~0/2,3,4,5,6"
    ),
    name="AmoebaNet-A",
)

# Liu, Simonyan, Yang. "DARTS: Differentiable Architecture Search", ICLR 2019 (second-order
# cell, "DARTS_V2" in the authors' genotypes.py). DARTS numbers the older cell 0; converted.
DARTS_V2 = Genotype.from_darts(
    normal=[
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ],
    reduce_concat=[2, 3, 4, 5],
    name="DARTS-V2",
)


def from_enas_arc(normal_arc: str, reduce_arc: str, name=None) -> Genotype:
    """Convert ENAS micro ``fixed_arc`` strings (x_id x_op y_id y_op per node; input 0 = cell k-2).

    ENAS concatenates every state that no node reads, inputs included.
    """

    def conv(arc):
        a = [int(t) for t in arc.split()]
        pairs = []
        for k in range(0, len(a), 4):
            pairs += [(ENAS_OPS[a[k + 1]], a[k]), (ENAS_OPS[a[k + 3]], a[k + 2])]
        used = {i for _, i in pairs}
        concat = [s for s in range(2 + len(pairs) // 2) if s not in used]
        return pairs, concat

    (n, nc), (r, rc) = conv(normal_arc), conv(reduce_arc)
    return Genotype.from_darts(n, nc, r, rc, name=name)


# Pham, Guan, Zoph, Le, Dean. "Efficient Neural Architecture Search via Parameter Sharing",
# ICML 2018; the micro cell of melodyguan/enas scripts/cifar10_micro_final.sh.
ENAS = from_enas_arc(
    "0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1",
    "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1",
    name="ENAS",
)

GENOTYPES = {"nasnet_a": NASNET_A, "amoebanet_a": AMOEBANET_A, "darts_v2": DARTS_V2, "enas": ENAS}
PAPERS = {
    "nasnet_a": "Zoph et al., Learning Transferable Architectures for Scalable Image Recognition, CVPR 2018",
    "amoebanet_a": "Real et al., Regularized Evolution for Image Classifier Architecture Search, AAAI 2019",
    "darts_v2": "Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019",
    "enas": "Pham et al., Efficient Neural Architecture Search via Parameter Sharing, ICML 2018",
}


def get(name: str) -> Genotype:
    """Look up a zoo genotype by name ('nasnet_a', 'NASNet-A', 'amoebanet_a', 'darts_v2', 'enas')."""
    key = name.lower().replace("-", "_")
    if key not in GENOTYPES:
        raise KeyError(f"No zoo genotype {name!r}; available: {sorted(GENOTYPES)}.")
    return GENOTYPES[key]
