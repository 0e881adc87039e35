"""keras-tuner HyperModels over the keras-nas search spaces.

One generic :class:`SpaceHyperModel` serves every architecture family: ``build(hp)``
registers each decision of the space as ``hp.Choice`` (names as in the space:
``normal/b0_in0``, ``edge_0_1``, ``layer0/filters``...), decodes the values to an
architecture, builds it with the family's network builder and compiles it.
``NASNetHyperModel``, ``NB201HyperModel`` and ``MacroHyperModel`` are factories for it.

Decision kinds (``input``/``op``, for AmoebaNet's mutations) reach an oracle through
``hypermodel.decision_kinds``: keras-nas tuners pass them on; with a plain
``keras_tuner.Tuner`` pass them yourself: ``AgingEvolutionOracle(kinds=hm.decision_kinds, ...)``.

``hypermodel.genotype(trial)`` (or HyperParameters, or a value dict) returns the
architecture of a trial.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import keras
import keras_tuner as kt

from keras_nas import families
from keras_nas.space.nb201 import NB201_OPS


class SpaceHyperModel(kt.HyperModel):
    """A keras-nas SearchSpace plus the family's network builder and compile settings.

    Args:
      space: the search space (its ``name`` picks the family unless ``family`` is given).
      build_settings: builder settings (``num_cells``, ``filters``, ``stem``, ``drop_path``...;
        see :meth:`keras_nas.families.Family.builder_call`).
      optimizer: a Keras optimizer name (``"adam"``), an optimizer instance (cloned per
        model) or a callable ``f(learning_rate) -> optimizer``.
      learning_rate: float passed to the optimizer.
      loss: defaults to sparse categorical cross-entropy on softmax outputs.
    """

    def __init__(
        self,
        space,
        input_shape,
        num_classes,
        *,
        family: Optional[families.Family] = None,
        build_settings: Optional[Mapping] = None,
        learning_rate=1e-3,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        name=None,
        tunable=True,
    ):
        super().__init__(name=name, tunable=tunable)
        self.space = space
        self.family = family or families.get_family(space.name)
        self.build_settings = dict(build_settings or {})
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = list(metrics) if metrics is not None else None

    def __getattr__(self, name):  # num_cells, filters, ... read as attributes
        settings = self.__dict__.get("build_settings") or {}
        if name in settings:
            return settings[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def decision_kinds(self) -> dict:
        """``{hp name: kind}`` of the space's decisions."""
        return {d.name: d.kind for d in self.space.decisions}

    def register(self, hp) -> dict:
        """Register the space's decisions on ``hp`` and return their values."""
        return {d.name: hp.Choice(d.name, list(d.options)) for d in self.space.decisions}

    def values_of(self, hp_or_trial) -> dict:
        if isinstance(hp_or_trial, kt.engine.trial.Trial):
            hp_or_trial = hp_or_trial.hyperparameters
        if isinstance(hp_or_trial, kt.HyperParameters):
            return dict(hp_or_trial.values)
        if isinstance(hp_or_trial, Mapping):
            return dict(hp_or_trial)
        raise TypeError(
            f"Expected HyperParameters, a Trial or a value dict, got {type(hp_or_trial).__name__}."
        )

    def genotype(self, hp_or_trial):
        """The architecture (Genotype / NB201Cell / MacroArchitecture) of a trial's values."""
        values = self.values_of(hp_or_trial)
        return self.space.decode(
            {d.name: values[d.name] for d in self.space.decisions if d.name in values}
        )

    def encode(self, arch) -> dict:
        """Hyperparameter values of an architecture (for warm starts)."""
        return self.space.encode(arch)

    def build_architecture(self, arch, hp) -> keras.Model:
        return self.family.build(
            arch, input_shape=self.input_shape, num_classes=self.num_classes, **self.build_settings
        )

    def make_optimizer(self):
        opt = self.optimizer
        if isinstance(opt, str):
            return keras.optimizers.get(
                {"class_name": opt, "config": {"learning_rate": self.learning_rate}}
            )
        if isinstance(opt, keras.optimizers.Optimizer):
            return opt.__class__.from_config(opt.get_config())
        if callable(opt):
            return opt(self.learning_rate)
        raise TypeError(
            f"optimizer must be a name, a keras optimizer or a callable, got {type(opt).__name__}."
        )

    def build(self, hp):
        values = self.register(hp)
        arch = self.space.decode(values)
        model = self.build_architecture(arch, hp)
        model.compile(optimizer=self.make_optimizer(), loss=self.loss, metrics=self.metrics)
        return model


def NASNetHyperModel(
    input_shape,
    num_classes,
    *,
    num_cells=1,
    filters=16,
    num_blocks=5,
    ops="amoebanet",
    stem="cifar",
    drop_path=0.0,
    **compile_kwargs,
) -> SpaceHyperModel:
    """NASNet/AmoebaNet cell search (normal + reduction cell, ``num_blocks`` blocks each).

    ``num_cells`` (N normal cells per stack) and ``filters`` (F) set the network built for
    each trial (the paper searched with N=3, F=24; tiny defaults here for quick searches).
    ``compile_kwargs``: ``learning_rate``, ``optimizer``, ``loss``, ``metrics``, ``name``, ``tunable``.
    """
    fam = families.get_family("nasnet")
    return SpaceHyperModel(
        fam.space(num_blocks=num_blocks, ops=ops),
        input_shape,
        num_classes,
        family=fam,
        build_settings={
            "num_cells": num_cells,
            "filters": filters,
            "stem": stem,
            "drop_path": drop_path,
        },
        **compile_kwargs,
    )


def NB201HyperModel(
    input_shape,
    num_classes,
    *,
    channels=16,
    num_cells=5,
    ops: Sequence[str] = NB201_OPS,
    **compile_kwargs,
) -> SpaceHyperModel:
    """NAS-Bench-201 cell search (6 edges, one op each)."""
    from keras_nas.space import NB201Space

    return SpaceHyperModel(
        NB201Space(ops),
        input_shape,
        num_classes,
        family=families.get_family("nb201"),
        build_settings={"filters": channels, "num_cells": num_cells},
        **compile_kwargs,
    )


def MacroHyperModel(
    input_shape,
    num_classes,
    *,
    num_layers=6,
    filters=(24, 36, 48, 64),
    kernel_sizes=(3, 5, 7),
    strides=(1, 2),
    skip_connections=False,
    **compile_kwargs,
) -> SpaceHyperModel:
    """Chain-structured macro search (per layer filters, kernel size, stride, optional skips)."""
    from keras_nas.space import MacroSpace

    space = MacroSpace(num_layers, filters, kernel_sizes, strides, skip_connections)
    return SpaceHyperModel(
        space, input_shape, num_classes, family=families.get_family("macro"), **compile_kwargs
    )
