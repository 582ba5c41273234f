"""A KerasCheckpointPlan -> the Keras model of its chain of layers (Keras 3 or tf_keras).

The export builds it in Keras 3 with the checkpoint's arrays; the proof's child process
builds the same chain in tf_keras and lets tf_keras restore it from the checkpoint itself.
Input `inputs`: int32 ids [batch, time] after an Embedding, else [batch, time, depth] in the
plan's dtype; output: the last layer's ([batch, time, width], or [batch, width] when the last
RNN layer returns its last output only).
"""

from legacy_share.keras import tf2_layers as plans

__all__ = ["build"]

# Every weight is overwritten (or restored), so Keras's random initializers are not run
# (an orthogonal QR per recurrent kernel costs seconds for big layers).
_NO_INIT = dict(kernel_initializer="zeros", recurrent_initializer="zeros",
                bias_initializer="zeros")


def build(plan, K, value_of=None, functional=True):  # pylint: disable=invalid-name
    """The model of `plan` in Keras module `K`.

    Args:
      plan: a KerasCheckpointPlan that is not refused.
      K: the Keras module (`keras` or tf_keras).
      value_of: checkpoint key -> array; None leaves the weights zero (to be restored).
      functional: a functional model (the export); False: a Sequential when the checkpoint's
        model was one, so tf_keras matches the checkpoint's `layer-N` edges one to one.
    Returns:
      The model, built, its weights set when `value_of` is given.
    """
    dtype = plan.dtype
    if plan.embedding is not None:
        shape, input_dtype = (None,), "int32"
    else:
        shape, input_dtype = (None, plan.layers[0].input_depth), dtype
    layers = [_layer(K, layer, dtype) for layer in plan.layers]
    if not functional and plan.sequential:
        model = K.Sequential(layers, name="legacy_share_reference")
        model.build((None,) + shape)
    else:
        inputs = K.Input(shape, dtype=input_dtype, name="inputs")
        x = inputs
        for layer in layers:
            x = layer(x)
        model = K.Model(inputs, x, name="legacy_share_export")
    if value_of is not None:
        for keras_layer, layer in zip(layers, plan.layers):
            if layer.weights:
                keras_layer.set_weights([value_of(key).astype(dtype) for key, _ in layer.weights])
    return model


def _layer(K, layer, dtype):  # pylint: disable=invalid-name
    name = f"{layer.kind.lower()}_{layer.index}"
    if layer.kind == plans.EMBEDDING:
        vocabulary, depth = layer.weights[0][1]
        return K.layers.Embedding(vocabulary, depth, mask_zero=layer.mask_zero, name=name,
                                  embeddings_initializer="zeros", dtype=dtype)
    if layer.kind == plans.DENSE:
        return K.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias,
                              kernel_initializer="zeros", bias_initializer="zeros", name=name,
                              dtype=dtype)
    if layer.kind == plans.DROPOUT:
        return K.layers.Dropout(0.0, name=name, dtype=dtype)
    options = dict(activation=layer.activation, use_bias=layer.use_bias,
                   return_sequences=layer.return_sequences, dtype=dtype, **_NO_INIT)
    if layer.kind != plans.SIMPLE_RNN:
        options["recurrent_activation"] = layer.recurrent_activation
    if layer.kind == plans.GRU:
        options["reset_after"] = layer.reset_after
    rnn = getattr(K.layers, layer.kind)(layer.units, name=name, **options)
    if not layer.bidirectional:
        return rnn
    return K.layers.Bidirectional(rnn, merge_mode=layer.merge_mode, name=f"bidirectional_"
                                  f"{layer.index}", dtype=dtype)
