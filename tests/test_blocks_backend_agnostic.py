"""keras_nas.blocks is backend-agnostic Keras 3: no TensorFlow import and no `tf.` call anywhere."""

import ast
from pathlib import Path

import pytest

BLOCKS = sorted((Path(__file__).resolve().parents[1] / "keras_nas" / "blocks").glob("*.py"))


@pytest.mark.parametrize("path", BLOCKS, ids=[p.name for p in BLOCKS])
def test_no_tensorflow_in_blocks(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        assert not any(n == "tensorflow" or n.startswith("tensorflow.") for n in names), (
            path.name,
            node.lineno,
        )
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert node.value.id != "tf", f"{path.name}:{node.lineno} uses tf.{node.attr}"


def test_blocks_found():
    assert {p.name for p in BLOCKS} >= {"ops.py", "cell.py", "stems.py", "network.py"}
