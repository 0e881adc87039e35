"""The ``keras-nas report`` subcommand: its flags and its entry point.

Why here and not in ``cli.py``: the report reads files only, so it runs before the CLI
imports TensorFlow-backed modules (``keras-nas report`` answers in about a second); ``cli.py``
only registers these two functions.
"""

from __future__ import annotations

import sys

from absl import flags

SUMMARY = "write RUN_DIR/report/index.html: plots of the search, the best cells, failed trials"
POSITIONAL = "RUN_DIR"


def define_flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string(
        "output_dir",
        "",
        "Where to write index.html and its PNGs (default RUN_DIR/report).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "top_k", 3, "How many of the best architectures to draw.", lower_bound=1, flag_values=fv
    )
    flags.DEFINE_enum(
        "renderer",
        "auto",
        ["auto", "graphviz", "pillow"],
        "Cell drawings: Graphviz dot (auto: when installed) or Pillow.",
        flag_values=fv,
    )
    return fv


def main(fv: flags.FlagValues, positional: list, prog: str = "keras-nas") -> int:
    """Write the report; bad input (missing or non-run directory, nothing finished) exits 2."""
    from keras_nas.report import ReportError, write_report

    run_dir = positional[0]
    try:
        index = write_report(run_dir, fv.output_dir or None, top_k=fv.top_k, engine=fv.renderer)
    except ReportError as e:
        print(f"{prog} report: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # matplotlib (or Pillow) missing
        print(f"{prog} report: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{prog} report: error: cannot write the report ({e}).", file=sys.stderr)
        return 1
    print(f"report: {index}", flush=True)
    return 0
