"""The REINFORCE controller's traced TensorFlow functions: the reference sampler step and the
batched policy gradient (an unrolled LSTM over the decisions). Used by
:mod:`keras_nas.controllers.reinforce`; TensorFlow is imported when they are first built."""

from __future__ import annotations


def _tf():
    import tensorflow as tf

    return tf


def make_fns(policy: str, num_layers: int, length: int):
    tf = _tf()
    f32, i32 = tf.float32, tf.int32
    spec = tf.TensorSpec

    def shape(logits, temp, tc):
        logits = logits / temp
        return tf.where(tc > 0, tc * tf.tanh(logits), logits)

    def lstm_step(lstm, x, hs, cs):
        new_h, new_c = [], []
        inp = x
        for layer in range(num_layers):
            z = (
                tf.matmul(tf.concat([inp, hs[layer]], axis=1), lstm[2 * layer])
                + lstm[2 * layer + 1]
            )
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * cs[layer] + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            new_h.append(h)
            new_c.append(c)
            inp = h
        return inp, new_h, new_c

    lstm_spec = [spec([None, None], f32), spec([None], f32)] * num_layers

    if policy == "lstm":

        @tf.function(
            input_signature=[
                lstm_spec,
                spec([1, None], f32),
                spec([num_layers, 1, None], f32),
                spec([num_layers, 1, None], f32),
                spec([None, None], f32),
                spec([None], f32),
                spec([], f32),
                spec([], f32),
            ],
            reduce_retracing=True,
        )
        def step_fn(lstm, x, h, c, W, b, temp, tc):
            out, hs, cs = lstm_step(lstm, x, tf.unstack(h), tf.unstack(c))
            logits = shape(tf.matmul(out, W)[0] + b, temp, tc)
            return tf.nn.softmax(logits), tf.stack(hs), tf.stack(cs)

    else:

        @tf.function(input_signature=[spec([None], f32), spec([], f32), spec([], f32)])
        def step_fn(b, temp, tc):
            return tf.nn.softmax(shape(b, temp, tc))

    @tf.function(
        input_signature=[
            lstm_spec if policy == "lstm" else [],
            spec([None], f32),
            spec([None, None, None], f32),
            spec([None, None], f32),
            spec([None, None, None], f32),
            spec([None, None], f32),
            spec([None], f32),
            spec([None], f32),
            spec([None, length], i32),
            spec([None, length], i32),
            spec([None, length], f32),
            spec([None], f32),
            spec([], f32),
        ]
    )
    def grad_fn(lstm, g_emb, W, b, emb, valid, temps, tcs, pidx, act, smask, adv, ent_w):
        B = tf.shape(pidx)[0]
        units = tf.shape(g_emb)[0]
        with tf.GradientTape() as tape:
            tape.watch([lstm, g_emb, W, b, emb])
            x = tf.tile(g_emb[None, :], [B, 1])
            hs = [tf.zeros([B, units]) for _ in range(num_layers)]
            cs = [tf.zeros([B, units]) for _ in range(num_layers)]
            logp_sum = tf.zeros([B])
            ent_sum = tf.zeros([B])
            for t in range(length):
                k = pidx[:, t]
                a = act[:, t]
                m = smask[:, t]
                if policy == "lstm":
                    out, hs, cs = lstm_step(lstm, x, hs, cs)
                    logits = tf.einsum("bh,bhm->bm", out, tf.gather(W, k)) + tf.gather(b, k)
                else:
                    logits = tf.gather(b, k)
                logits = shape(logits, tf.gather(temps, k)[:, None], tf.gather(tcs, k)[:, None])
                vmask = tf.gather(valid, k)
                logits = tf.where(vmask > 0, logits, tf.fill(tf.shape(logits), -1e9))
                logp = tf.nn.log_softmax(logits)
                chosen = tf.gather(logp, a, batch_dims=1)
                ent = -tf.reduce_sum(tf.exp(logp) * logp * vmask, axis=1)
                logp_sum += chosen * m
                ent_sum += ent * m
                x = tf.gather_nd(emb, tf.stack([k, a], axis=1))
            bf = tf.cast(B, f32)
            loss = -tf.reduce_sum(logp_sum * adv) / bf - ent_w * tf.reduce_sum(ent_sum) / bf
        g_lstm, g_gemb, gW, gb, gemb = tape.gradient(loss, [lstm, g_emb, W, b, emb])
        conv = lambda g, ref: tf.zeros_like(ref) if g is None else tf.convert_to_tensor(g)  # noqa: E731
        g_lstm = [conv(g, r) for g, r in zip(g_lstm, lstm)]
        return loss, g_lstm, conv(g_gemb, g_emb), conv(gW, W), conv(gb, b), conv(gemb, emb)

    return step_fn, grad_fn
