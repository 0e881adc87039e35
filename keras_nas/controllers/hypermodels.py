"""keras-tuner HyperModels over the keras-nas search spaces.

``build(hp)`` registers every decision of the space as ``hp.Choice`` (names as in the
space: ``normal/b0_in0``, ``edge_0_1``, ``layer0/filters``...), decodes the values to an
architecture, builds it with ``keras_nas.blocks`` and compiles it.

Decision kinds (``input``/``op``) reach the oracles two ways: ``hypermodel.decision_kinds``
(read by keras-nas tuners) and a process-wide registry filled when the HyperModel is
created (:func:`keras_nas.controllers.oracles.register_decision_kinds`), so
``kt.Tuner(oracle=AgingEvolutionOracle(...), hypermodel=NASNetHyperModel(...))`` applies
AmoebaNet's hidden-state/op mutations too.

``hypermodel.genotype(trial.hyperparameters)`` (or a Trial, or a value dict) returns the
architecture of a trial.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import keras_tuner as kt

from keras_nas.controllers.oracles import register_decision_kinds
from keras_nas.space import MacroSpace, NASNetCellSpace, NB201Space
from keras_nas.space.nb201 import NB201_OPS


class SpaceHyperModel(kt.HyperModel):
    """Base class: a keras-nas SearchSpace plus a network builder and compile settings.

    Args:
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
        learning_rate=1e-3,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        name=None,
        tunable=True,
    ):
        super().__init__(name=name, tunable=tunable)
        self.space = space
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = list(metrics) if metrics is not None else None
        register_decision_kinds(self.decision_kinds)

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
        raise TypeError(f"Expected HyperParameters, a Trial or a value dict, got {type(hp_or_trial).__name__}.")

    def genotype(self, hp_or_trial):
        """The architecture (Genotype / NB201Cell / MacroArchitecture) of a trial's values."""
        values = self.values_of(hp_or_trial)
        return self.space.decode({d.name: values[d.name] for d in self.space.decisions if d.name in values})

    def encode(self, arch) -> dict:
        """Hyperparameter values of an architecture (for warm starts)."""
        return self.space.encode(arch)

    def build_architecture(self, arch, hp) -> keras.Model:
        raise NotImplementedError

    def make_optimizer(self):
        opt = self.optimizer
        if isinstance(opt, str):
            return keras.optimizers.get({"class_name": opt, "config": {"learning_rate": self.learning_rate}})
        if isinstance(opt, keras.optimizers.Optimizer):
            return opt.__class__.from_config(opt.get_config())
        if callable(opt):
            return opt(self.learning_rate)
        raise TypeError(f"optimizer must be a name, a keras optimizer or a callable, got {type(opt).__name__}.")

    def build(self, hp):
        values = self.register(hp)
        arch = self.space.decode(values)
        model = self.build_architecture(arch, hp)
        model.compile(optimizer=self.make_optimizer(), loss=self.loss, metrics=self.metrics)
        return model


class NASNetHyperModel(SpaceHyperModel):
    """NASNet/AmoebaNet cell search (normal + reduction cell, ``num_blocks`` blocks each).

    ``num_cells`` (N normal cells per stack) and ``filters`` (F) set the network built for
    each trial (the paper searched with N=3, F=24; tiny defaults here for quick searches).
    """

    def __init__(
        self,
        input_shape,
        num_classes,
        *,
        num_cells=1,
        filters=16,
        num_blocks=5,
        ops="amoebanet",
        stem="cifar",
        learning_rate=1e-3,
        optimizer="adam",
        drop_path=0.0,
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        name=None,
        tunable=True,
    ):
        super().__init__(
            NASNetCellSpace(num_blocks=num_blocks, ops=ops),
            input_shape,
            num_classes,
            learning_rate=learning_rate,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            name=name,
            tunable=tunable,
        )
        self.num_cells = num_cells
        self.filters = filters
        self.stem = stem
        self.drop_path = drop_path

    def build_architecture(self, genotype, hp):
        from keras_nas.blocks.network import build_network

        return build_network(
            genotype,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            num_cells=self.num_cells,
            filters=self.filters,
            stem=self.stem,
            drop_path=self.drop_path,
        )


class NB201HyperModel(SpaceHyperModel):
    """NAS-Bench-201 cell search (6 edges, one op each)."""

    def __init__(
        self,
        input_shape,
        num_classes,
        *,
        channels=16,
        num_cells=5,
        ops: Sequence[str] = NB201_OPS,
        learning_rate=1e-3,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        name=None,
        tunable=True,
    ):
        super().__init__(
            NB201Space(ops),
            input_shape,
            num_classes,
            learning_rate=learning_rate,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            name=name,
            tunable=tunable,
        )
        self.channels = channels
        self.num_cells = num_cells

    def build_architecture(self, cell, hp):
        from keras_nas.blocks.network import build_nb201_network

        return build_nb201_network(
            cell, input_shape=self.input_shape, num_classes=self.num_classes, channels=self.channels, num_cells=self.num_cells
        )


class MacroHyperModel(SpaceHyperModel):
    """Chain-structured macro search (per layer filters, kernel size, stride, optional skips)."""

    def __init__(
        self,
        input_shape,
        num_classes,
        *,
        num_layers=6,
        filters=(24, 36, 48, 64),
        kernel_sizes=(3, 5, 7),
        strides=(1, 2),
        skip_connections=False,
        learning_rate=1e-3,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        name=None,
        tunable=True,
    ):
        super().__init__(
            MacroSpace(num_layers, filters, kernel_sizes, strides, skip_connections),
            input_shape,
            num_classes,
            learning_rate=learning_rate,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            name=name,
            tunable=tunable,
        )

    def build_architecture(self, arch, hp):
        from keras_nas.blocks.network import build_macro_network

        return build_macro_network(arch, input_shape=self.input_shape, num_classes=self.num_classes)
