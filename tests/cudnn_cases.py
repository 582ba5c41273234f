"""cuDNN checkpoints as TF 1.x saved them, written by TF's own Saver (shared by the tests)."""

import numpy as np

from legacy_share import cudnn
from legacy_share.testing import tf, tf1
from tests.file_guard import save_variables

SCOPE = "cudnn_lstm"


def save_cudnn_checkpoint(folder, layout, canonical=False, slots=False, seed=0,
                          buffer_name=f"{SCOPE}/opaque_kernel", extra=None, meta=False,
                          canonical_scope=SCOPE, slot_head="", dtype=np.float32):
    """A checkpoint as TF 1.x CudnnLSTM/GRU/RNN layers saved it -> (prefix, canonicals).

    The buffer is packed by the documented layout (`buffer_name` None: not saved); `canonical`
    adds the TF 1.4-1.15 `cudnn_compatible_*_cell` tensors under `canonical_scope` (the scope
    the layer was built in: its own when called, the one outside it when built by hand),
    `slots` Adam's two slots (of the buffer, or of each canonical tensor without one) named
    `<slot_head><tensor>/Adam`, `meta` a graph whose CudnnRNNParamsSize node carries the
    layout (built, never run). Values are `dtype`.
    """
    rng = np.random.RandomState(seed)
    buffer = rng.uniform(-0.9, 0.9, layout.size).astype(dtype)
    canonicals = cudnn.unpack(buffer, layout)
    variables = {buffer_name: buffer, "global_step": np.int64(7)}
    if buffer_name is None:  # TF 1.3-1.15 checkpoints that kept the canonical tensors only
        del variables[None]
    slotted = [buffer_name] if buffer_name else []
    if canonical:
        cell = {"lstm": "cudnn_compatible_lstm_cell",
                "gru": "cudnn_compatible_gru_cell"}[layout.kind]
        head = f"{canonical_scope}/" if canonical_scope else ""
        for (layer, direction), canon in canonicals.items():
            if layout.directions == 1:
                base = f"{head}rnn/multi_rnn_cell/cell_{layer}/{cell}"
            else:
                base = (f"{head}stack_bidirectional_rnn/cell_{layer}/bidirectional_rnn/"
                        f"{'bw' if direction else 'fw'}/{cell}")
            weights = (dict(zip(("kernel", "bias"), cudnn.compatible_lstm_cell_weights(canon)))
                       if layout.kind == "lstm" else cudnn.compatible_gru_cell_weights(canon))
            for suffix, value in weights.items():
                variables[f"{base}/{suffix}"] = value.astype(dtype)
                if buffer_name is None:
                    slotted.append(f"{base}/{suffix}")
    if slots:
        for name in slotted:
            shape = np.shape(variables[name])
            variables[f"{slot_head}{name}/Adam"] = rng.uniform(-1, 1, shape).astype(dtype)
            variables[f"{slot_head}{name}/Adam_1"] = rng.uniform(0, 1, shape).astype(dtype)
    variables.update(extra or {})
    prefix = save_variables(folder, variables, write_meta_graph=False)
    if meta:  # the op has only GPU kernels: built into an exported graph, never run
        with tf1.Graph().as_default():
            tf.raw_ops.CudnnRNNParamsSize(
                num_layers=tf.constant(layout.layers), num_units=tf.constant(layout.units),
                input_size=tf.constant(layout.input_size), T=tf.float32, S=tf.int32,
                rnn_mode=layout.kind,
                direction="bidirectional" if layout.directions == 2 else "unidirectional")
            tf1.train.export_meta_graph(prefix + ".meta")
    return prefix, canonicals
