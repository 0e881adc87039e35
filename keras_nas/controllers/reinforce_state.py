"""Persistence of :class:`~keras_nas.controllers.reinforce.ReinforceController`: JSON state
(vocabulary, baseline, pending batch, journal of updates since the array snapshot) and the packed
weight / Adam-slot arrays saved to the oracle's npz."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


class ReinforceStateMixin:
    """``get_state``/``set_state``/``get_arrays``/``set_arrays`` of the REINFORCE controller."""

    # -- persistence ---------------------------------------------------------------------
    def get_state(self) -> dict:
        state = super().get_state()
        state.update(
            {
                "vocab": [list(v) for v in self.vocab],
                "baseline": [self.bl_num, self.bl_den],
                "adam_step": self.adam_step,
                "num_updates": self.num_updates,
                "num_observed": self.num_observed,
                "num_failed": self.num_failed,
                "pending": [[[list(s) for s in t], r, a] for t, r, a in self.pending],
                "last_batch_reward": self.last_batch_reward,
                "built": "g_emb" in self.weights,
                "journal": [[[[list(s) for s in t], r, a] for t, r, a in b] for b in self.journal],
                "journal_adam_step": self._snap_adam_step,
            }
        )
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self.vocab = [[str(n), int(c), str(kd)] for n, c, kd in state.get("vocab", [])]
        self._index = {v[0]: i for i, v in enumerate(self.vocab)}
        self.bl_num, self.bl_den = (float(x) for x in state.get("baseline", [0.0, 0.0]))
        self.adam_step = int(state.get("adam_step", 0))
        self.num_updates = int(state.get("num_updates", 0))
        self.num_observed = int(state.get("num_observed", 0))
        self.num_failed = int(state.get("num_failed", 0))
        self.pending = [
            [[[int(k), int(a)] for k, a in t], float(r), float(a_)]
            for t, r, a_ in state.get("pending", [])
        ]
        lbr = state.get("last_batch_reward")
        self.last_batch_reward = None if lbr is None else float(lbr)
        self._bins_cache = {}
        self._built_hint = bool(state.get("built"))
        self.journal = [
            [[[[int(k), int(a)] for k, a in t], float(r), float(a_)] for t, r, a_ in b]
            for b in state.get("journal", [])
        ]
        self._snap_adam_step = int(state.get("journal_adam_step", self.adam_step))
        if self._snap_adam_step + len(self.journal) != self.adam_step:
            raise ValueError(
                f"ReinforceController.set_state: journal of {len(self.journal)} updates from Adam step "
                f"{self._snap_adam_step} does not reach the saved step {self.adam_step}."
            )

    def _layout(self) -> list:
        """``[(weight name, shape)]`` in the order :meth:`get_arrays` packs them (derived from the
        policy, ``units``, ``num_layers`` and the vocabulary, so the npz needs no index)."""
        if "g_emb" not in self.weights and not self.vocab and not self._built_hint:
            return []
        u = self.units
        out = [("g_emb", (u,))]
        out += [(k, (2 * u, 4 * u) if "kernel" in k else (4 * u,)) for k in self._lstm_keys()]
        for k, (_, n, _) in enumerate(self.vocab):
            out += [(f"p{k}/emb", (n, u)), (f"p{k}/W", (u, n)), (f"p{k}/b", (n,))]
        return out

    def arrays_version(self) -> int:
        """Changes whenever :meth:`get_arrays` would return different arrays (the oracle skips
        rewriting an unchanged npz: the snapshot changes every ``snapshot_every`` updates)."""
        return self._arrays_version

    def get_arrays(self) -> dict:
        """Weights and Adam slots at the last snapshot (see ``snapshot_every``), packed as three
        flat float32 vectors ``w``, ``m``, ``v`` (one zip entry each instead of three per weight).
        Restore with :meth:`set_state` first: the layout comes from the vocabulary, and
        :meth:`set_arrays` replays the journalled updates. The live weights are ``self.weights``."""
        if self._snap is None:
            self._snap = self._pack()
        return {k: v.copy() for k, v in self._snap.items()}

    def _pack(self) -> dict:
        names = [k for k, _ in self._layout()]
        if sorted(names) != sorted(self.weights):  # only if edited by hand
            raise ValueError(
                "ReinforceController.get_arrays: the weights do not match the vocabulary."
            )
        if not names:
            return {key: np.zeros((0,), np.float32) for key in ("w", "m", "v")}
        return {
            key: np.concatenate([d[k].ravel() for k in names]).astype(np.float32, copy=False)
            for key, d in (("w", self.weights), ("m", self.slots_m), ("v", self.slots_v))
        }

    def set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`get_arrays`'s packed vectors (after :meth:`set_state`), or the
        one-array-per-weight form (``w/<name>``, ``m/<name>``, ``v/<name>``) earlier versions saved."""
        self.weights, self.slots_m, self.slots_v, self._tensors = {}, {}, {}, {}
        self._arrays_version += 1
        if set(arrays) == {"w", "m", "v"}:
            layout = self._layout()
            total = sum(int(np.prod(shape)) for _, shape in layout)
            for key, target in (("w", self.weights), ("m", self.slots_m), ("v", self.slots_v)):
                flat = np.asarray(arrays[key], dtype=np.float32).ravel()
                if flat.size != total:
                    raise ValueError(
                        f"ReinforceController.set_arrays: packed array {key!r} holds {flat.size} values but the "
                        f"saved vocabulary ({len(self.vocab)} params, units={self.units}, policy={self.policy!r}, "
                        f"num_layers={self.num_layers}) needs {total}; restore the state with the controller "
                        "arguments that wrote it (set_state before set_arrays)."
                    )
                pos = 0
                for name, shape in layout:
                    n = int(np.prod(shape))
                    target[name] = flat[pos : pos + n].reshape(shape).copy()
                    pos += n
            self._snap = {
                k: np.asarray(arrays[k], dtype=np.float32).ravel().copy() for k in ("w", "m", "v")
            }
            # replay the journalled updates (the same computation on the same inputs: exact)
            target_step, self.adam_step = self.adam_step, self._snap_adam_step
            for batch in self.journal:
                self._apply(batch)
            assert self.adam_step == target_step, (self.adam_step, target_step)
            return
        for key, a in arrays.items():
            kind, name = key.split("/", 1) if "/" in key else (key, "")
            target = {"w": self.weights, "m": self.slots_m, "v": self.slots_v}.get(kind)
            if target is None or not name:
                raise ValueError(f"ReinforceController.set_arrays: unexpected array {key!r}.")
            target[name] = np.array(a, dtype=np.float32)
        missing = [k for k in self.weights if k not in self.slots_m or k not in self.slots_v]
        if missing:
            raise ValueError(
                f"ReinforceController.set_arrays: Adam slots missing for {missing[:3]}."
            )
        self.journal, self._snap_adam_step, self._snap = (
            [],
            self.adam_step,
            None,
        )  # the live weights
