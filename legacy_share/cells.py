"""RNN cells that keep one set of variables wherever the same object is called."""

import re
import sys

from legacy_share import names
from legacy_share._tf import rnn_cell, tf, tf1
from legacy_share.errors import (DifferentGraphError, IncompatibleShapeError, NewVariableError,
                                 NotCalledError)

__all__ = [
    "SharedCell",
    "SharedGRUCell",
    "SharedLSTMCell",
    "SharedBasicLSTMCell",
    "SharedBasicRNNCell",
]

# The Keras backend of the module that serves tf.compat.v1.nn.rnn_cell (tf_keras on TF >= 2.16,
# keras before): its name counters are the ones the plain cells draw their default names from.
_KERAS_BACKEND = sys.modules[rnn_cell.RNNCell.__module__].backend
# TF1's variable_scope refuses get_variable of a new name under reuse with this message.
_MISSING_VARIABLE_RE = re.compile(r"Variable (\S+) does not exist")
# Packages whose frames stand between the caller's code and a cell's call (dynamic_rnn, ...).
_LIBRARY_PACKAGES = frozenset({"legacy_share", "tensorflow", "keras", "tf_keras"})


class SharedCell:
    """Mixin that makes any TF1 RNN cell share its variables across every call.

    The first call captures the current variable scope and creates the variables there; every
    later call re-enters that scope and calls `reuse_variables()` on it, so no variable is
    created again, whatever scope the call comes from. The reuse is set on the re-entered copy
    of the scope only: `get_variable` in the caller's scopes behaves as before.

    Use it first in the bases: `class SharedMyCell(SharedCell, MyCell): pass`. Without a
    `name` the cell is named like `MyCell` would be (`my_cell_1`, unique in the graph) and its
    variables live under `my_cell`, as a plain `MyCell`'s do.
    """

    CELL_SCOPE = None  # the wrapped cell's own default scope name, e.g. `gru_cell`

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shared_scope = None
        self._shared_scope_arg = None
        self._shared_input_depth = None
        self._shared_graph = None
        self._shared_call_site = None

    def _make_unique_name(self, name_uid_map=None, avoid_names=None, namespace="",
                          zero_based=False):
        # The legacy Layer calls this for a cell built without a name. It would derive the
        # name from the class (`shared_gru_cell`); use the wrapped cell's instead, so that the
        # default variable scope is `gru_cell` and `.name` is unique from the same counter as
        # plain GRUCells (`gru_cell_1`, `gru_cell_2`, ...).
        base_name = self.CELL_SCOPE or _wrapped_cell_scope(type(self))
        name = _KERAS_BACKEND.unique_object_name(
            base_name, name_uid_map=name_uid_map, avoid_names=avoid_names,
            namespace=namespace, zero_based=zero_based)
        return name, base_name

    @property
    def scope_name(self):
        """Name of the variable scope captured on the first call, e.g. `rnn/multi_rnn_cell/cell_0`."""
        if self._shared_scope is None:
            raise NotCalledError(
                f"{type(self).__name__} {self.name!r} has no variable scope yet: call it once "
                "first; its first call creates the variables and captures the scope.")
        return self._shared_scope.name

    def __call__(self, inputs, state, scope=None, *args, **kwargs):
        """Runs the cell: `inputs` [batch, depth], `state` as the wrapped cell takes it.

        Raises:
          IncompatibleShapeError: a later call brings an input depth the weights cannot take.
          DifferentGraphError: a later call is made in another graph than the first call.
          NewVariableError: a later call tries to create a variable.
        """
        depth = _static_depth(inputs)
        graph = _outer_graph()
        if self._shared_scope is None:
            captured = tf1.get_variable_scope()
            result = super().__call__(inputs, state, *args, scope=scope, **kwargs)
            self._shared_scope, self._shared_scope_arg = captured, scope
            self._shared_input_depth = depth
            self._shared_graph = graph
            self._shared_call_site = _call_site()
            return result
        self._check_graph(graph)
        self._check_input_depth(depth)
        trainable_before = _trainable_variables(graph)
        with tf1.variable_scope(self._shared_scope, auxiliary_name_scope=False) as reentered:
            reentered.reuse_variables()
            try:
                result = super().__call__(inputs, state, *args, scope=self._shared_scope_arg,
                                          **kwargs)
            except ValueError as exc:
                missing = _MISSING_VARIABLE_RE.search(str(exc))
                if missing is None:
                    raise
                raise self._new_variable_error(missing.group(1), "tf.compat.v1.get_variable") \
                    from exc
        created = _trainable_variables(graph)[len(trainable_before):]
        if created:
            raise self._new_variable_error(", ".join(v.op.name for v in created), "tf.Variable")
        return result

    def _check_graph(self, graph):
        first = self._shared_graph
        if first is None or graph is None or graph is first:
            return
        raise DifferentGraphError(
            f"{type(self).__name__} {self.name!r} holds its variables in the graph of its first "
            f"call ({first!r}, scope {self.scope_name or '<root>'!r}), but this call is made in "
            f"another graph ({graph!r}). A shared cell belongs to one graph: create a new "
            f"{type(self).__name__} for each graph (e.g. build the cells inside the function "
            f"that builds the graph), or restore the weights there from a checkpoint."
            f"{self._first_call_note()}")

    def _new_variable_error(self, variables, how):
        return NewVariableError(
            f"{type(self).__name__} {self.name!r} created every variable in scope "
            f"{self.scope_name or '<root>'!r} on its first call, but a later call tried to create "
            f"{variables} (with {how}). Only the first call may create variables: create them "
            f"all on the first call with tf.compat.v1.get_variable (in build() or call()), "
            f"under names that do not depend on the call.{self._first_call_note()}")

    def _check_input_depth(self, depth):
        first = self._shared_input_depth
        if depth is None or first is None or depth == first:
            return
        output_size = self.output_size
        raise IncompatibleShapeError(
            f"{type(self).__name__} in scope {self.scope_name or '<root>'!r} was built for input depth "
            f"{first}, but this call brings input depth {depth}, which its kernel cannot take. "
            f"To share one cell across stacked layers the input depth must equal its output "
            f"size ({output_size}: num_units, or num_proj for a projected LSTMCell): project the "
            f"input to depth {output_size} first "
            f"(e.g. tf.compat.v1.layers.dense), or give the first layer a cell of its own."
            f"{self._first_call_note()}")

    def _first_call_note(self):
        """" Its first call was at FILE:LINE." (as make_template's "originally defined at")."""
        site = self._shared_call_site
        return f" Its first call was at {site}." if site else ""


def _wrapped_cell_scope(cls):
    wrapped = next(c for c in cls.__mro__ if not issubclass(c, SharedCell))
    snake = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", wrapped.__name__)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", snake).lower()


def _call_site():
    """"file:line" of the innermost frame outside TensorFlow, Keras and legacy_share: the
    caller's code that made this call (directly, or through dynamic_rnn and the like)."""
    frame = sys._getframe(1)  # pylint: disable=protected-access
    while frame is not None:
        if frame.f_globals.get("__name__", "").split(".")[0] not in _LIBRARY_PACKAGES:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _outer_graph():
    """The graph variables are created in (outside any while loop or function body); None if eager."""
    with tf.init_scope():
        return None if tf.executing_eagerly() else tf1.get_default_graph()


def _trainable_variables(graph):
    if graph is None:
        return []
    return graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES)


def _static_depth(inputs):
    shape = getattr(inputs, "shape", None)
    if shape is None or shape.rank is None or shape.rank == 0:
        return None
    return tf.compat.dimension_value(shape[-1])  # a Dimension under disable_v2_behavior()


class SharedGRUCell(SharedCell, rnn_cell.GRUCell):
    """`tf.compat.v1.nn.rnn_cell.GRUCell` with one set of variables for every call.

    Variables (under the first call's scope): `gru_cell/gates/kernel`
    [depth + num_units, 2 * num_units], `gates/bias` [2 * num_units],
    `candidate/kernel` [depth + num_units, num_units], `candidate/bias` [num_units].
    """

    CELL_SCOPE = names.GRU_SCOPE


class SharedLSTMCell(SharedCell, rnn_cell.LSTMCell):
    """`tf.compat.v1.nn.rnn_cell.LSTMCell` with one set of variables for every call."""

    CELL_SCOPE = names.LSTM_SCOPE


class SharedBasicLSTMCell(SharedCell, rnn_cell.BasicLSTMCell):
    """`tf.compat.v1.nn.rnn_cell.BasicLSTMCell` with one set of variables for every call."""

    CELL_SCOPE = names.BASIC_LSTM_SCOPE


class SharedBasicRNNCell(SharedCell, rnn_cell.BasicRNNCell):
    """`tf.compat.v1.nn.rnn_cell.BasicRNNCell` with one set of variables for every call."""

    CELL_SCOPE = names.BASIC_RNN_SCOPE
