"""The policy update of :class:`~keras_nas.controllers.reinforce.ReinforceController`: a batch of
finished trials packed into padded arrays, the traced REINFORCE gradient
(:mod:`keras_nas.controllers.reinforce_tf`), optional global-norm clipping and one Adam step in
numpy. A module of its own like the persistence (:mod:`keras_nas.controllers.reinforce_state`,
whose ``set_arrays`` replays journalled batches through it); ``reinforce.py`` keeps proposing and
observing."""

from __future__ import annotations

import math

import numpy as np


def _tf():
    import tensorflow as tf

    return tf


class ReinforceUpdateMixin:
    """``_apply`` (gradient and Adam step on one batch) and ``_adam`` of the REINFORCE controller."""

    def _apply(self, batch) -> float:
        """Gradient of the REINFORCE loss on ``batch`` and one Adam step; returns the loss."""
        K = len(self.vocab)
        M = max(n for _, n, _ in self.vocab)
        u = self.units
        B, L = len(batch), max(len(t) for t, _, _ in batch)
        _, grad_fn = self._fns(L)
        W = np.zeros((K, u, M), np.float32)
        b = np.zeros((K, M), np.float32)
        emb = np.zeros((K, M, u), np.float32)
        valid = np.zeros((K, M), np.float32)
        temps = np.ones((K,), np.float32)
        tcs = np.zeros((K,), np.float32)
        for k, (_, n, kind) in enumerate(self.vocab):
            W[k, :, :n] = self.weights[f"p{k}/W"]
            b[k, :n] = self.weights[f"p{k}/b"]
            emb[k, :n] = self.weights[f"p{k}/emb"]
            valid[k, :n] = 1.0
            temps[k], tcs[k] = self._shape_consts(kind)
        pidx = np.zeros((B, L), np.int32)
        act = np.zeros((B, L), np.int32)
        smask = np.zeros((B, L), np.float32)
        adv = np.zeros((B,), np.float32)
        for i, (traj, _, a) in enumerate(batch):
            for t, (k, ai) in enumerate(traj):
                pidx[i, t], act[i, t], smask[i, t] = k, ai, 1.0
            adv[i] = a
        tf = _tf()
        lstm = [self._tensor(k) for k in self._lstm_keys()]
        c = tf.constant
        loss, g_lstm, g_gemb, gW, gb, gemb = grad_fn(
            lstm,
            self._tensor("g_emb"),
            c(W),
            c(b),
            c(emb),
            c(valid),
            c(temps),
            c(tcs),
            c(pidx),
            c(act),
            c(smask),
            c(adv),
            c(np.float32(self.entropy_weight)),
        )
        grads = {"g_emb": g_gemb.numpy()}
        for key, g in zip(self._lstm_keys(), g_lstm):
            grads[key] = g.numpy()
        gW, gb, gemb = gW.numpy(), gb.numpy(), gemb.numpy()
        for k, (_, n, _) in enumerate(self.vocab):
            grads[f"p{k}/W"] = gW[k, :, :n]
            grads[f"p{k}/b"] = gb[k, :n]
            grads[f"p{k}/emb"] = gemb[k, :n]
        if self.grad_clip:
            norm = math.sqrt(
                sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())
            )
            if norm > self.grad_clip:
                scale = np.float32(self.grad_clip / norm)
                grads = {k: g * scale for k, g in grads.items()}
        self._adam(grads)
        self._tensors = {}
        return float(loss)

    def _adam(self, grads: dict):
        b1, b2, eps = self.adam
        self.adam_step += 1
        t = self.adam_step
        lr_t = np.float32(self.learning_rate * math.sqrt(1.0 - b2**t) / (1.0 - b1**t))
        b1f, b2f = np.float32(b1), np.float32(b2)
        for k, g in grads.items():
            g = g.astype(np.float32, copy=False)
            m = self.slots_m[k] = b1f * self.slots_m[k] + (np.float32(1) - b1f) * g
            v = self.slots_v[k] = b2f * self.slots_v[k] + (np.float32(1) - b2f) * g * g
            self.weights[k] = (self.weights[k] - lr_t * m / (np.sqrt(v) + np.float32(eps))).astype(
                np.float32
            )
