"""legacy_share.cell_kinds held to TensorFlow: each record's variables, shapes, Keras gate order,
Keras layer and NumPy step against a real tf.compat.v1 cell of its kind, in a real graph.

(The older generations' names of each kind are held to TF's checkpoint_convert.py table and to
real old-name graphs in tests/test_planning.py and tests/test_generations.py.)
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from legacy_share import cell_kinds, reference
from legacy_share.testing import tf, tf1
from legacy_share.keras import weights as keras_weights

DEPTH, UNITS, PROJ, BATCH, TIME = 3, 5, 4, 2, 6
# Constructor options that make the cell create every variable its record lists.
FULL_OPTIONS = {"lstm": dict(use_peepholes=True, num_proj=PROJ)}
KINDS = [pytest.param(kind, id=kind.key) for kind in cell_kinds.KINDS]


def _run_tf1_cell(cell_class, options, inputs):
    """(outputs [batch, time, out], {variable name: value}) of a real TF1 cell in a new graph."""
    with tf1.Graph().as_default() as graph:
        x = tf1.placeholder(tf.float32, [None, None, DEPTH])
        cell = cell_class(UNITS, **options)
        outputs, _ = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        variables = graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
        initial = np.random.RandomState(1)
        with tf1.Session(graph=graph) as session:
            for variable in variables:  # every weight non-zero, so a wrong column order shows
                shape = variable.shape.as_list()
                variable.load(initial.uniform(-0.7, 0.7, shape).astype(np.float32), session)
            return (session.run(outputs, {x: inputs}),
                    session.run({v.op.name: v for v in variables}))


def _inputs():
    return np.random.RandomState(0).uniform(-1, 1, [BATCH, TIME, DEPTH]).astype(np.float32)


def _below_scope(values, kind):
    prefix = f"rnn/{kind.scope}/"
    assert all(name.startswith(prefix) for name in values), sorted(values)
    return {name[len(prefix):]: value for name, value in values.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_records_name_and_shape_what_tensorflow_creates(kind):
    options = FULL_OPTIONS.get(kind.key, {})
    _, values = _run_tf1_cell(kind.tf1_cell_class(), options, _inputs())
    created = {name: value.shape for name, value in _below_scope(values, kind).items()}
    output = PROJ if "num_proj" in options else None
    assert list(created) == list(kind.variables)  # creation order too
    assert created == {v: kind.shape(v, DEPTH, UNITS, output) for v in kind.variables}


@pytest.mark.parametrize("kind", KINDS)
def test_without_options_a_cell_creates_exactly_the_required_variables(kind):
    _, values = _run_tf1_cell(kind.tf1_cell_class(), {}, _inputs())
    required = [v for v in kind.variables if v not in kind.optional]
    assert list(_below_scope(values, kind)) == required


@pytest.mark.parametrize("kind", KINDS)
def test_the_shared_class_is_the_kinds_and_names_like_it(kind):
    import legacy_share.cells  # pylint: disable=import-outside-toplevel

    shared = kind.shared_cell_class()
    assert kind.shared_class in legacy_share.cells.__all__
    assert issubclass(shared, kind.tf1_cell_class()) and shared.CELL_SCOPE == kind.scope
    options = FULL_OPTIONS.get(kind.key, {})
    _, plain = _run_tf1_cell(kind.tf1_cell_class(), options, _inputs())
    _, values = _run_tf1_cell(shared, options, _inputs())
    assert {n: v.shape for n, v in values.items()} == {n: v.shape for n, v in plain.items()}


@pytest.mark.parametrize("kind, options", [
    pytest.param(kind, options, id=f"{kind.key}-{'-'.join(options) or 'default'}")
    for kind in cell_kinds.KINDS
    for options in ([{}, {"forget_bias": 0.25}] if "forget_bias" in kind.settings else [{}])])
def test_the_numpy_step_computes_what_tensorflow_does(kind, options):
    options = dict(FULL_OPTIONS.get(kind.key, {}), **options)
    inputs = _inputs()
    expected, values = _run_tf1_cell(kind.tf1_cell_class(), options, inputs)
    weights = _below_scope(values, kind)
    step = reference.kind_step(kind, weights, **{k: v for k, v in options.items()
                                                 if k == "forget_bias"})
    zeros = np.zeros([BATCH, UNITS])
    state = (zeros, np.zeros([BATCH, expected.shape[-1]])) if kind.state_pair else zeros
    outputs, _ = reference.run_stack([step], [state], inputs.astype(np.float64))
    np.testing.assert_allclose(outputs, expected, atol=2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_the_keras_layer_takes_the_weights_and_computes_what_tensorflow_does(kind):
    """The record's Keras layer and options, with `keras_weights.layer_weights`, in tf_keras
    (the layer classes and options are Keras 3's too: tests/test_export.py proves those)."""
    from legacy_share.keras import model  # pylint: disable=import-outside-toplevel

    inputs = _inputs()
    forget_bias = {"forget_bias": 0.25} if "forget_bias" in kind.settings else {}
    expected, values = _run_tf1_cell(kind.tf1_cell_class(), forget_bias, inputs)
    K = model.keras_module(2)  # pylint: disable=invalid-name
    layer = getattr(K.layers, kind.keras_layer)(UNITS, return_sequences=True,
                                                **kind.keras_options)
    layer.build((None, None, DEPTH))
    layer.set_weights(keras_weights.layer_weights(kind.scope, _below_scope(values, kind),
                                                  **forget_bias))
    np.testing.assert_allclose(np.asarray(layer(inputs)), expected, atol=2e-5)


def test_every_lookup_finds_its_record():
    for kind in cell_kinds.KINDS:
        assert cell_kinds.by_scope(kind.scope) is kind and cell_kinds.by_key(kind.key) is kind
        assert cell_kinds.display_name(kind.scope) == kind.tf1_class
        assert callable(kind.reference_step_function())
        assert set(kind.reference_arguments) == set(kind.variables)
        assert {scope for scope, _, _ in kind.keras_blocks} <= {
            v.rpartition("/")[0] for v in kind.variables}
    for cudnn in cell_kinds.CUDNN_KINDS:
        assert cell_kinds.cudnn_kind(cudnn.cell) is cudnn
        assert cudnn.tf1_scope is None or cell_kinds.by_scope(cudnn.tf1_scope)
    with pytest.raises(KeyError):
        cell_kinds.by_scope("layer_norm_basic_lstm_cell")


def test_records_are_frozen():
    with pytest.raises(AttributeError):
        cell_kinds.GRU.scope = "other"  # dataclasses.FrozenInstanceError
    with pytest.raises(TypeError):
        cell_kinds.GRU.shapes["gates/kernel"] = ("rows", "units")


def test_the_registry_imports_neither_tensorflow_nor_keras():
    """A fresh process: both the tf_keras side and the Keras 3 side import the registry."""
    code = ("import sys, json, legacy_share.cell_kinds\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf_keras', 'numpy'))))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
