"""Which TensorFlow generation named each RNN stack of a checkpoint (pure: names in).

The generation is read from the cells' own names (cell scope, variable path, the layer and
direction scopes right above the cell), one decision per stack, never guessed per tensor:
TF 0.x's scope renames (`RNN` -> `rnn`, `MultiRNNCell/Cell0` -> `multi_rnn_cell/cell_0`,
`BiRNN/FW` -> `bidirectional_rnn/fw`, wrapper class names) are for TF 0.x stacks only. Every
other name keeps its scope components as written: they are the user's. So the PTB tutorial's
TF >= 1.2 `model/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/kernel` keeps its `RNN`.

A stack is every cell below one scope: the path above the cell scope without its layer
scope (`model/RNN/MultiRNNCell` for `model/RNN/MultiRNNCell/Cell1/GRUCell/...`).
"""

import dataclasses
from typing import FrozenSet

from legacy_share import cell_kinds
from legacy_share import names
from legacy_share import renaming
from legacy_share.errors import PlanError

__all__ = ["TF0", "TF1_0", "TODAY", "OBJECT_GRAPH_KEY", "Stack", "CheckpointNaming",
           "stack_generations", "describe", "object_based_evidence", "OBJECT_BASED_NOTE",
           "tf0_rnn_notes"]

TF0, TF1_0, TODAY = "TF 0.x", "TF 1.0-1.1", "TF >= 1.2"
# TF 2's object-based checkpoints (tf.train.Checkpoint, Keras): keys are object-graph paths,
# `<path>/.ATTRIBUTES/VARIABLE_VALUE`, and the graph itself is saved under this key.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_OBJECT_ATTRIBUTES = "/.ATTRIBUTES/"
OBJECT_BASED_NOTE = (
    "a TF 2 object-based checkpoint (tf.train.Checkpoint or Keras: keys such as {key}, an "
    "object graph in " + OBJECT_GRAPH_KEY + "): its keys are paths in that graph, not TF1 "
    "variable names, so there is nothing to migrate; every tensor is carried bit for bit "
    "under its own key (restore it with tf.train.Checkpoint(...).restore; `legacy-share "
    "export` reads the tf.keras models in it, those a model's save_weights wrote)")
# TF 0.x's `RNN`: tf.nn.rnn / dynamic_rnn's default scope, or the user's own
# variable_scope("RNN") (the PTB tutorial's); the names are the same either way.
TF0_RNN_NOTE = (
    "{scope}: TF 0.x named this scope RNN, as tf.nn.rnn and dynamic_rnn did, and as a "
    "variable_scope(\"RNN\") of the model's own would: the names cannot tell which. It becomes "
    "rnn, what dynamic_rnn creates today; if your graph opens variable_scope(\"RNN\") itself "
    "(the PTB tutorial did), migrate the output again with --no-share --rename rnn=RNN")
_ANY = frozenset((TF0, TF1_0, TODAY))
_SINCE_1_0 = frozenset((TF1_0, TODAY))

# Cell scopes only TF 0.x wrote: TF 1.0 lowercased the core cells.
_TF0_CELL_SCOPES = cell_kinds.legacy_scopes(cell_kinds.TF0)
# ... except contrib's LSTMBlockCell, which kept `LSTMBlockCell/W` (or, with
# use_compatible_names, `LSTMCell/W_0`) until TF 1.1 (TF 1.0 docs of tf.contrib.rnn).
_TF0_OR_TF1_0_CELL_SCOPES = cell_kinds.legacy_scopes(cell_kinds.TF0_TO_1_1)
# Variable paths below a cell scope that TF 1.0 - 1.1 wrote (checkpoint_convert.py's table).
_TF1_0_PATHS = ("weights", "biases", "weights/part_{}", "projection/weights",
                "projection/weights/part_{}", "gates/weights", "gates/biases",
                "candidate/weights", "candidate/biases")
# GRUBlockCell's own names, the same in every generation that had it.
_BLOCK_PATHS = names.GRU_BLOCK_KERNELS + ("b_ru", "b_c")
_TF0_LAYER = renaming.LEGACY_LAYER_SCOPE_RE
_LAYER = renaming.LAYER_SCOPE_RE
# Scope components TF 0.x's rules rename (names.LEGACY_*): markers of a TF 0.x name outside
# any stack, and the components whose prefix ties such a name to a TF 0.x stack.
_TF0_WRAPPERS = tuple(names.LEGACY_WRAPPER_SCOPES) + tuple(
    old for old, new in names.LEGACY_LINEAR_SCOPES.items() if old != new)
_TF0_SCOPES = (names.LEGACY_RNN_SCOPE, names.LEGACY_BIDIRECTIONAL_SCOPE,
               names.LEGACY_MULTI_RNN_CELL_SCOPE) + tuple(names.LEGACY_DIRECTION_SCOPES)


def object_based_evidence(input_names):
    """A key of `input_names` that shows a TF 2 object-based checkpoint, or None."""
    fallback = None
    for name in input_names:
        if _OBJECT_ATTRIBUTES in name:
            return name
        if name == OBJECT_GRAPH_KEY:
            fallback = name
    return fallback


@dataclasses.dataclass(frozen=True)
class Stack:
    """The cells below one scope: `scope` (layer scope left out), the `generations` its names
    fit, the one decided (`generation`), and an input name showing it (`evidence`)."""

    scope: str
    generations: FrozenSet[str]
    generation: str
    evidence: str


def describe(generations):
    """`{TF 1.0-1.1, TF >= 1.2}` -> "TF >= 1.0": the generations a name fits, for messages."""
    if generations == _SINCE_1_0:
        return "TF >= 1.0"
    if generations == _ANY:
        return "any TF version"
    return " or ".join(g for g in (TF0, TF1_0, TODAY) if g in generations)


def _cell_generations(comps):
    """(stack scope, generations the cell's names fit) of the cell variable in `comps`, or None."""
    found = renaming.find_cell_variable(comps)
    if found is None:
        return None
    position, path = found
    cell = comps[position]
    if cell in _TF0_CELL_SCOPES:
        fits = frozenset((TF0,))
    elif cell in _TF0_OR_TF1_0_CELL_SCOPES:
        fits = frozenset((TF0, TF1_0))
    elif path in _BLOCK_PATHS:
        fits = _ANY
    elif path in _TF1_0_PATHS:
        fits = frozenset((TF1_0,))
    elif path in names.CELL_VARIABLES.get(renaming.today_cell_scope(cell), ()):
        fits = _SINCE_1_0 if path in names.LSTM_PEEPHOLES else frozenset((TODAY,))
    else:
        fits = frozenset((TF0,))  # `Linear/Matrix`, `W_0`, `B`, `W`, `wci`, ...
    above = comps[:position]
    if len(above) >= 2 and above[-2] == names.LEGACY_MULTI_RNN_CELL_SCOPE and \
            _TF0_LAYER.fullmatch(above[-1]):
        fits &= {TF0}
        above = above[:-1]
    elif len(above) >= 2 and above[-2] == names.MULTI_RNN_CELL_SCOPE and \
            _LAYER.fullmatch(above[-1]):
        fits &= _SINCE_1_0
        above = above[:-1]
    elif len(above) >= 2 and above[-2] == names.LEGACY_BIDIRECTIONAL_SCOPE and \
            above[-1] in names.LEGACY_DIRECTION_SCOPES:
        fits &= {TF0}
    return "/".join(above), fits


def stack_generations(input_names):
    """The naming generation of every stack among `input_names` -> {scope: Stack}.

    A stack's generation is the one all its cells' names fit. When they fit several (a
    GRUBlockCell's `w_ru` has the same name in every generation, `LSTMBlockCell/W` was TF 0.x's
    and TF 1.0's): TF 0.x if the scope right above the cell is one only TF 0.x's RNN functions
    and wrappers made (`RNN`, `BiRNN/FW`, `AttentionCellWrapper`); else the checkpoint decides: TF 0.x if every decided stack is
    TF 0.x, else the names are kept as written.

    Raises:
      PlanError: the cells of one stack carry names of generations no TensorFlow wrote
        together (e.g. `cell_0/gru_cell/gates/weights` beside `cell_1/gru_cell/gates/kernel`).
    """
    fits, evidence = {}, {}
    for name in input_names:
        found = _cell_generations(name.split("/"))
        if found is None:
            continue
        scope, generations = found
        if not generations:
            raise PlanError(
                f"{name}: its cell's variable and the layer scope above it are named by "
                f"different TensorFlow versions, which no TensorFlow version wrote; fix the "
                f"names with --rename or leave it out with --exclude", tensor=name)
        before = fits.get(scope, _ANY)
        if not generations & before:
            first = evidence[scope]
            raise PlanError(
                f"the cells of stack {scope or '<root>'} carry names of different TensorFlow "
                f"versions ({first}: {describe(before)}; {name}: {describe(generations)}), "
                f"which no TensorFlow version writes together; leave one out with --exclude "
                f"or make them agree with --rename", tensor=name)
        fits[scope] = before & generations
        evidence.setdefault(scope, name)
    decided = {g for f in fits.values() if len(f) == 1 for g in f}
    fallback = TF0 if decided == {TF0} else TODAY
    return {scope: Stack(scope, f, _decide(f, scope.split("/"), fallback), evidence[scope])
            for scope, f in fits.items()}


def _decide(generations, scope, fallback):
    if len(generations) == 1:
        return next(iter(generations))
    last = scope[-1]
    made_by_tf0 = last in (names.LEGACY_RNN_SCOPE,) + _TF0_WRAPPERS or (
        last in names.LEGACY_DIRECTION_SCOPES and scope[-2:-1] == [names.LEGACY_BIDIRECTIONAL_SCOPE])
    if TF0 in generations and made_by_tf0:
        return TF0
    if fallback in generations:
        return fallback
    return TODAY if TODAY in generations else TF1_0


def tf0_rnn_notes(stacks):
    """A plan note (TF0_RNN_NOTE) per TF 0.x stack whose scope holds TF 0.x's `RNN`.

    Args:
      stacks: `stack_generations` of the input names (CheckpointNaming.stacks).
    """
    scopes = {"/".join(comps[:comps.index(names.LEGACY_RNN_SCOPE) + 1])
              for comps in (stack.scope.split("/") for stack in stacks.values()
                            if stack.generation == TF0)
              if names.LEGACY_RNN_SCOPE in comps}
    return [TF0_RNN_NOTE.format(scope=scope) for scope in sorted(scopes)]


class CheckpointNaming:
    """The generation of each stack of a checkpoint, and which names take TF 0.x scope renames.

    Args:
      input_names: the input names (after the user's --rename), slots and globals included.
    Raises:
      PlanError: as `stack_generations`.
    """

    def __init__(self, input_names):
        self.stacks = stack_generations(input_names)
        self._tf0_scopes = [s.scope.split("/") for s in self.stacks.values()
                            if s.generation == TF0]

    def legacy_scopes(self, comps):
        """True when name `comps` takes TF 0.x's scope renames.

        A cell's variable: when its stack is TF 0.x. Another name: when it shows TF 0.x
        itself (a wrapper's class name such as `EmbeddingWrapper`, `MultiRNNCell`, `BiRNN`, a
        `Linear/Matrix`), or when its scopes up to its last TF 0.x-looking one (`RNN`, ...)
        lead to a TF 0.x stack (`RNN/embedding` beside `RNN/MultiRNNCell/Cell0/GRUCell/...`).
        """
        found = _cell_generations(comps)
        if found is not None:
            stack = self.stacks.get(found[0])
            return stack is not None and stack.generation == TF0
        length = renaming.variable_length(comps)
        scopes = comps[:length - 1]
        if any(c in _TF0_WRAPPERS or c in (names.LEGACY_MULTI_RNN_CELL_SCOPE,
                                           names.LEGACY_BIDIRECTIONAL_SCOPE) for c in scopes):
            return True
        if length >= 2 and comps[length - 2:length] in (["Linear", "Matrix"], ["Linear", "Bias"]):
            return True
        marked = [i for i, c in enumerate(scopes) if c in _TF0_SCOPES]
        if not marked:
            return False
        prefix = scopes[:marked[-1] + 1]
        return any(scope[:len(prefix)] == prefix for scope in self._tf0_scopes)
