"""An ExportPlan and the checkpoint's arrays -> a functional Keras model with those weights.

Inputs `inputs` [batch, time, depth] in the plan's dtype (float64 for a float64 checkpoint, else
float32; int32 ids [batch, time] with an embedding) and
`lengths` [batch] int32; the output is the top layer's sequence, zero past each length
(`dynamic_rnn(..., sequence_length=lengths)`; bidirectional: fw and bw concatenated).
"""

import numpy as np

from legacy_share import _process
from legacy_share import cell_kinds
from legacy_share.errors import KerasBackendError
from legacy_share.keras import cudnn_stacks
from legacy_share.keras import custom
from legacy_share.keras import structure
from legacy_share.keras import weights as _weights

__all__ = ["keras_module", "assemble"]

# Every weight is overwritten with the checkpoint's, so Keras's random initializers (an
# orthogonal QR of every recurrent kernel: 30 s for four 2048-unit GRUs, again on reload) are
# not worth running. Retraining from scratch would need other initializers anyway.
_NO_INIT = dict(kernel_initializer="zeros", recurrent_initializer="zeros",
                bias_initializer="zeros")


def keras_module(flavour):
    """Keras 3's `keras` (flavour 3), or tf_keras (2; `tf.keras` on TensorFlow < 2.16)."""
    with _process.keras_config_untouched():  # imported here: no ~/.keras/keras.json made
        if flavour == 3:
            try:
                import keras  # pylint: disable=import-outside-toplevel
            except Exception as exc:  # pylint: disable=broad-except  (whatever the backend raises)
                raise KerasBackendError(_process.keras_backend_failure(exc)) from exc
            return keras
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        if _process.tensorflow_minor(tf.__version__) < (2, 16):
            return tf.keras
        import tf_keras  # pylint: disable=import-outside-toplevel
        return tf_keras


def assemble(plan, value_of, K):  # pylint: disable=invalid-name
    """Builds the model of `plan` in Keras module `K` with weights from `value_of(sources)`.

    Args:
      plan: an ExportPlan whose `stack` is exact or custom, with its layer count known.
      value_of: (tensor names, shards in order) -> the whole array.
      K: the Keras module (`keras_module(flavour)`).
    Returns:
      The functional model, weights set.
    """
    stack, dtype = plan.stack, plan.dtype
    if plan.embedding is not None:
        inputs = K.Input((None,), dtype="int32", name="inputs")
    else:
        inputs = K.Input((None, stack.depths[0]), dtype=dtype, name="inputs")
    lengths = K.Input((), dtype="int32", name="lengths")
    mask = _mask(K, inputs, lengths)
    x = inputs
    if plan.embedding is not None:
        table = value_of(plan.embedding.sources[0])
        embedding = K.layers.Embedding(table.shape[0], table.shape[1],
                                       embeddings_initializer="zeros", name="embedding",
                                       dtype=dtype)
        x = embedding(x)
        embedding.set_weights([table.astype(dtype)])
    for index, link in enumerate(plan.chain):  # a chain's layers named stack{i}_...
        x = _stack(K, link, value_of, x, mask, dtype,
                   f"stack{index}_" if len(plan.chain) > 1 else "")
    if plan.dense is not None:
        kernel = value_of(plan.dense.sources[0])
        bias = value_of(plan.dense.sources[1]) if len(plan.dense.sources) > 1 else None
        dense = K.layers.Dense(kernel.shape[1], use_bias=bias is not None, name="dense",
                               kernel_initializer="zeros", dtype=dtype)
        x = dense(x)
        dense.set_weights([w.astype(dtype) for w in (kernel, bias) if w is not None])
    return K.Model([inputs, lengths], x, name="legacy_share_export")


def _mask(K, inputs, lengths):  # pylint: disable=invalid-name
    """[batch, time] bool, True before each length: `dynamic_rnn`'s right padding."""
    if hasattr(K, "ops"):
        ops = K.ops
        first = inputs if len(inputs.shape) == 2 else inputs[:, :, 0]
        position = ops.cumsum(ops.ones_like(first, dtype="int32"), axis=1)
        return ops.less_equal(position, ops.expand_dims(lengths, -1))
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.sequence_mask(lengths, tf.shape(inputs)[1])


def _stack(K, stack, value_of, x, mask, dtype, name=""):  # pylint: disable=invalid-name
    def cell_weights(direction, position):
        if cell_kinds.cudnn_kind(stack.cell):
            found = cudnn_stacks.layer_weights(stack, value_of, direction, position)
        else:
            variables = stack.cell_sources(direction, position)
            arrays = {v: value_of(srcs) for v, srcs in variables.items()}
            found = _weights.layer_weights(stack.cell, arrays, stack.forget_bias,
                                           custom=stack.status == structure.CUSTOM)
        return [np.asarray(w).astype(dtype) for w in found]

    directions = ["fw", "bw"] if stack.topology != structure.FORWARD else [""]
    if stack.topology == structure.BIDIRECTIONAL and stack.layers > 1:
        cells = [_cell(K, stack, f"cell_{i}", dtype) for i in range(stack.layers)]
        rnn = K.layers.RNN(K.layers.StackedRNNCells(cells, dtype=dtype), return_sequences=True,
                           zero_output_for_mask=True, name=name + "stacked", dtype=dtype)
        layer = K.layers.Bidirectional(rnn, merge_mode="concat", name=name + "bidirectional",
                                       dtype=dtype)
        x = layer(x, mask=mask)
        layer.set_weights([w for d in directions for i in range(stack.layers)
                           for w in cell_weights(d, i)])
        return x
    built = {}
    for position in range(stack.layers):
        index = 0 if stack.shared else position
        if index not in built:
            layer = _rnn(K, stack, f"{name}layer_{index}", dtype)
            if stack.topology != structure.FORWARD:
                layer = K.layers.Bidirectional(layer, merge_mode="concat",
                                               name=f"{name}bidirectional_{index}", dtype=dtype)
            built[index] = layer
            x = layer(x, mask=mask)
            layer.set_weights([w for d in directions for w in cell_weights(d, index)])
        else:
            x = built[index](x, mask=mask)
    return x


def _rnn(K, stack, name, dtype):  # pylint: disable=invalid-name
    options = dict(return_sequences=True, zero_output_for_mask=True, name=name, dtype=dtype)
    if cell_kinds.cudnn_kind(stack.cell):
        return cudnn_stacks.keras_rnn(K, stack, dict(options, **_NO_INIT))
    if stack.status == structure.CUSTOM:
        return K.layers.RNN(_cell(K, stack, name + "_cell", dtype), **options)
    kind = cell_kinds.by_scope(stack.cell)
    cls = getattr(K.layers, kind.keras_layer)
    options.update(_NO_INIT)
    options.update(kind.keras_options)
    return cls(stack.units, **options)


def _cell(K, stack, name, dtype):  # pylint: disable=invalid-name
    if stack.status == structure.CUSTOM:
        num_proj = stack.output if cell_kinds.LSTM.projection in stack.extras else None
        return custom.cell_class(K)(stack.units, num_proj=num_proj, cell_clip=stack.cell_clip,
                                    proj_clip=stack.proj_clip, name=name, dtype=dtype)
    kind = cell_kinds.by_scope(stack.cell)
    cls = getattr(K.layers, kind.keras_layer + "Cell")
    return cls(stack.units, name=name, dtype=dtype, **_NO_INIT, **kind.keras_options)
