"""One place that decides how searches and final trainings are distributed (tf.distribute).

Why: a search trial, a final ImageNet training and a detection fine-tune should all run
on whatever accelerators are there without code changes: a TPU when one is asked for or
attached, MirroredStrategy over several GPUs, the default (single-device) strategy
otherwise. Batch sizes are given per replica and scaled here, so hyperparameters keep
their meaning when the replica count changes.

Pass the strategy to keras-tuner as ``Tuner(..., distribution_strategy=strategy)`` and
build/compile final models under ``strategy.scope()``.

Testing without accelerators: :func:`configure_logical_cpus` splits the CPU into N
logical devices, so MirroredStrategy runs with N replicas. It must run before
TensorFlow initialises its devices (at process start); tests therefore use a subprocess.
"""

from __future__ import annotations

import glob
import os
import threading

STRATEGY_NAMES = ("auto", "tpu", "mirrored", "default", "cpu:N")
TPU_ENV_VARS = (
    "TPU_NAME",
    "COLAB_TPU_ADDR",
    "TPU_ACCELERATOR_TYPE",
    "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS",
)


class StrategyError(RuntimeError):
    """The requested strategy cannot be created here; the message says why and what to do."""


def configure_logical_cpus(n: int):
    """Split the first physical CPU into ``n`` logical devices (for MirroredStrategy tests).

    Must be called before TensorFlow has initialised its devices; afterwards TensorFlow
    refuses and this raises :class:`StrategyError` (unless ``n`` devices already exist).
    """
    import tensorflow as tf

    n = int(n)
    if n < 1:
        raise StrategyError(f"configure_logical_cpus needs n >= 1, got {n}.")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * n
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have >= n:
            return
        raise StrategyError(
            f"Cannot create {n} logical CPU devices: TensorFlow is already initialised with {have}. "
            "Call keras_nas.distribute.configure_logical_cpus (or resolve_strategy('cpu:N')) at process "
            "start, before any model is built or tensor created."
        ) from None


def tpu_present(tpu_address: str | None = None) -> bool:
    """Cheap check (no network): an address given, a TPU env var set, or local TPU chips."""
    if tpu_address:
        return True
    if any(os.environ.get(v) for v in TPU_ENV_VARS):
        return True
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def _reachable(host: str, port: int, timeout_s: float) -> str | None:
    """None if a TCP connection to host:port opens within ``timeout_s``, else the reason."""
    import socket

    result = {}

    def probe():  # getaddrinfo has no timeout of its own: run it in a thread
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result["ok"] = True
        except OSError as e:
            result["error"] = str(e) or type(e).__name__

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout_s + 1)
    if result.get("ok"):
        return None
    return result.get("error", f"no answer within {timeout_s:.0f} s")


def _preflight_tpu(tpu_address, timeout_s):
    """Fail fast before TensorFlow's resolver, whose gRPC/metadata calls can block uninterruptibly."""
    addr = tpu_address or os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or ""
    if addr in ("", "local") and (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        return "local"
    if addr.startswith("grpc://") or (":" in addr and "/" not in addr):
        hostport = addr[len("grpc://") :] if addr.startswith("grpc://") else addr
        host, _, port = hostport.rpartition(":")
        try:
            port = int(port)
        except ValueError:
            raise StrategyError(
                f"TPU address {addr!r}: port {port!r} is not a number; use grpc://host:8470."
            ) from None
        why = _reachable(host, port, min(timeout_s, 10.0))
        if why:
            raise StrategyError(
                f"TPU at {addr!r} is not reachable ({why}). Check the address and that the TPU is up, or use "
                "strategy='auto'/'default'."
            )
        return addr if addr.startswith("grpc://") else f"grpc://{addr}"
    # A TPU name: TPUClusterResolver asks the GCE metadata server / Cloud TPU API.
    why = _reachable("metadata.google.internal", 80, min(timeout_s, 5.0))
    if why:
        raise StrategyError(
            f"TPU name {addr!r} needs the Google Cloud metadata server, which is not reachable here ({why}). "
            "Run on a Cloud VM/TPU VM, or pass tpu_address='grpc://host:8470'."
        )
    return addr or None


def _connect_tpu(tpu_address, timeout_s):
    import tensorflow as tf

    tpu_address = _preflight_tpu(tpu_address, timeout_s)

    result = {}

    def work():
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or None)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            result["resolver"] = resolver
        except Exception as e:  # noqa: BLE001 - reported below with context
            result["error"] = e

    t = threading.Thread(target=work, name="keras-nas-tpu-connect", daemon=True)
    t.start()
    t.join(timeout_s)
    where = tpu_address or os.environ.get("TPU_NAME") or "the local/default TPU"
    if t.is_alive():
        raise StrategyError(
            f"TPU at {where!r} did not answer within {timeout_s:.0f} s. Check the address (grpc://host:8470 or "
            "the TPU name) and that the TPU is up, or use strategy='auto'/'default'."
        )
    if "error" in result:
        raise StrategyError(
            f"Could not connect to the TPU at {where!r}: {result['error']}"
        ) from result["error"]
    return result["resolver"]


def resolve_strategy(
    name: str = "auto", tpu_address: str | None = None, tpu_timeout_s: float = 60.0
):
    """Return a ``tf.distribute.Strategy``.

    ``name``:
      * ``"auto"``: TPU if one is attached or addressed, else MirroredStrategy over all GPUs
        when there are several, else the default strategy.
      * ``"tpu"``: TPUStrategy (TPUClusterResolver; bounded by ``tpu_timeout_s``); a clear
        :class:`StrategyError` at once when no TPU is visible.
      * ``"mirrored"``: MirroredStrategy over all GPUs (or the CPU when there are none).
      * ``"default"``: the default single-device strategy.
      * ``"cpu:N"``: MirroredStrategy over N logical CPU devices (for tests; call at process start).
    """
    import tensorflow as tf

    name = (name or "auto").strip().lower()
    if name.startswith("cpu:"):
        try:
            n = int(name.split(":", 1)[1])
        except ValueError:
            raise StrategyError(
                f"Strategy {name!r}: expected 'cpu:N' with an integer N, e.g. 'cpu:2'."
            ) from None
        configure_logical_cpus(n)
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:n]
        if len(devices) < n:
            raise StrategyError(
                f"Strategy {name!r}: only {len(devices)} logical CPU devices exist."
            )
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "tpu":
        if not tpu_present(tpu_address):
            raise StrategyError(
                "strategy='tpu' but no TPU is visible: no tpu_address given, none of "
                f"{', '.join(TPU_ENV_VARS)} set and no /dev/accel* devices. Pass tpu_address='grpc://host:8470' "
                "(or the TPU name), or use strategy='auto'."
            )
        resolver = _connect_tpu(tpu_address, tpu_timeout_s)
        return tf.distribute.TPUStrategy(resolver)
    if name == "auto":
        if tpu_present(tpu_address):
            return resolve_strategy("tpu", tpu_address, tpu_timeout_s)
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise StrategyError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}.")


def num_replicas(strategy=None) -> int:
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    return int(strategy.num_replicas_in_sync)


def global_batch_size(per_replica: int, strategy=None) -> int:
    """Batch size to feed ``model.fit``: ``per_replica`` times the number of replicas."""
    per_replica = int(per_replica)
    if per_replica < 1:
        raise ValueError(f"per_replica batch size must be >= 1, got {per_replica}.")
    return per_replica * num_replicas(strategy)


def scaled_learning_rate(
    base_lr: float, per_replica: int, strategy=None, base_batch: int = 256
) -> float:
    """Linear learning-rate scaling (Goyal et al. 2017): ``base_lr * global_batch / base_batch``."""
    return float(base_lr) * global_batch_size(per_replica, strategy) / float(base_batch)
