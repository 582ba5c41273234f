"""LegacyLSTMCell: TF1's LSTMCell with peepholes, clipping and projection, as a Keras RNN cell.

No Keras 3 or tf_keras layer computes these. Registered as serializable (package
"legacy_share"), so a `.keras` file holding it loads after `import legacy_share.keras`; it
uses backend-neutral ops, so it runs on TensorFlow, JAX and PyTorch.
"""

__all__ = ["cell_class"]

_CLASSES = {}


def cell_class(keras_module):
    """The LegacyLSTMCell class of `keras_module` (Keras 3 `keras`, or tf_keras), registered."""
    key = keras_module.__name__
    if key not in _CLASSES:
        _CLASSES[key] = _define(keras_module)
    return _CLASSES[key]


def _define(K):  # pylint: disable=invalid-name
    ops = K.ops if hasattr(K, "ops") else _TfOps()

    register = getattr(getattr(K, "saving", None), "register_keras_serializable", None)

    @(register or K.utils.register_keras_serializable)(package="legacy_share")
    class LegacyLSTMCell(K.layers.Layer):
        """c = σ(f + w_f∘c₋)∘c₋ + σ(i + w_i∘c₋)∘tanh(j), clipped;
        m = σ(o + w_o∘c)∘tanh(c) @ P, clipped.

        Weights: kernel [d, 4n], recurrent_kernel [p, 4n], bias [4n] (Keras gate order
        i, f, c, o, forget bias folded in), peepholes [3, n] (f, i, o), projection [n, p];
        p = num_proj or n. States [c [n], m [p]].
        """

        def __init__(self, units, num_proj=None, cell_clip=None, proj_clip=None, **kwargs):
            super().__init__(**kwargs)
            self.units = int(units)
            self.num_proj = None if num_proj is None else int(num_proj)
            self.cell_clip = cell_clip
            self.proj_clip = proj_clip
            out = self.num_proj or self.units
            self.state_size = [self.units, out]
            self.output_size = out

        def build(self, input_shape):
            n, p = self.units, self.num_proj or self.units
            self.kernel = self.add_weight(shape=(input_shape[-1], 4 * n), name="kernel",
                                          initializer="glorot_uniform")
            self.recurrent_kernel = self.add_weight(shape=(p, 4 * n), name="recurrent_kernel",
                                                    initializer="glorot_uniform")
            self.bias = self.add_weight(shape=(4 * n,), name="bias", initializer="zeros")
            self.peepholes = self.add_weight(shape=(3, n), name="peepholes", initializer="zeros")
            self.projection = self.add_weight(shape=(n, p), name="projection",
                                              initializer="identity")
            self.built = True

        def call(self, inputs, states, training=None):  # pylint: disable=unused-argument
            c, m = states[0], states[1]
            z = ops.matmul(inputs, self.kernel) + ops.matmul(m, self.recurrent_kernel) + self.bias
            i, f, j, o = ops.split(z, 4, axis=-1)
            new_c = (ops.sigmoid(f + self.peepholes[0] * c) * c
                     + ops.sigmoid(i + self.peepholes[1] * c) * ops.tanh(j))
            if self.cell_clip is not None:
                new_c = ops.clip(new_c, -self.cell_clip, self.cell_clip)
            new_m = ops.sigmoid(o + self.peepholes[2] * new_c) * ops.tanh(new_c)
            new_m = ops.matmul(new_m, self.projection)
            if self.proj_clip is not None:
                new_m = ops.clip(new_m, -self.proj_clip, self.proj_clip)
            return new_m, [new_c, new_m]

        def get_config(self):
            return dict(super().get_config(), units=self.units, num_proj=self.num_proj,
                        cell_clip=self.cell_clip, proj_clip=self.proj_clip)

    return LegacyLSTMCell


class _TfOps:
    """The few `keras.ops` the cell uses, for tf_keras (which has no `ops`)."""

    def __getattr__(self, name):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        return {"matmul": tf.matmul, "split": lambda x, n, axis: tf.split(x, n, axis=axis),
                "sigmoid": tf.sigmoid, "tanh": tf.tanh,
                "clip": tf.clip_by_value}[name]
