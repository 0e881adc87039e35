"""Run reports: ``keras-nas report RUN_DIR`` writes ``RUN_DIR/report/index.html`` (see :mod:`.page`).

Light on import (no matplotlib, TensorFlow or keras-tuner until a report is drawn), so the
command line can register the subcommand for free.
"""

from keras_nas.report.rundir import ReportError, Run, load_run, read_scalars


def write_report(run_dir, out_dir=None, *, top_k: int = 3, engine: str = "auto") -> str:
    """See :func:`keras_nas.report.page.write_report`."""
    from keras_nas.report.page import write_report as _write

    return _write(run_dir, out_dir, top_k=top_k, engine=engine)


__all__ = ["ReportError", "Run", "load_run", "read_scalars", "write_report"]
