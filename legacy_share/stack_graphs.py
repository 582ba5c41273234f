"""The graph that restores each RNN stack of a plan, as data, and the check of a plan against it.

Pure: names and shapes in, `StackGraph` descriptions and verdicts out; `legacy_share.graph_names`
builds a description in TensorFlow and returns the {name: shape} of the variables it creates.

Not circular: the scope a stack's graph is built in comes from the stack's INPUT names, the
user's components kept verbatim; only TF 0.x's own components directly around the cell
(`RNN`, `BiRNN/FW`, `MultiRNNCell/Cell0`) map to today's (`rnn`, `bidirectional_rnn/fw`,
`multi_rnn_cell/cell_0`), and only in a stack whose cell-level names are TF 0.x's. The cell,
its units and input depth (read from the kernel), the layers and the sharing come from the plan.
"""

import dataclasses
from typing import Optional

from legacy_share import cell_kinds
from legacy_share import grouping
from legacy_share import names
from legacy_share import renaming
from legacy_share.errors import NameCheckError
from legacy_share.tables import format_shape

__all__ = ["StackGraph", "EXACT", "INCOMPLETE", "BY_RULE", "DYNAMIC_RNN", "BIDIRECTIONAL",
           "BIDIRECTIONAL_SHARED", "BIDIRECTIONAL_SCOPED", "CELL_CALL", "Stack", "stacks_of",
           "graph_of", "describe", "compare"]

EXACT = "exact"
INCOMPLETE = "incomplete"
BY_RULE = "names by rule; no graph to check against"
DYNAMIC_RNN, BIDIRECTIONAL, CELL_CALL = "dynamic_rnn", "bidirectional_dynamic_rnn", "cell"
# bidirectional_dynamic_rnn(cells, cells): one set of cell objects given as both directions.
# TF >= 1.2 cells keep their variables, so the bw direction reuses fw's and creates none.
BIDIRECTIONAL_SHARED = "bidirectional_dynamic_rnn_shared"
# bidirectional_dynamic_rnn(..., scope=SCOPE): its directions in `SCOPE/fw`, `SCOPE/bw`, with no
# `bidirectional_rnn` between (the StackGraph's `scope` is SCOPE itself).
BIDIRECTIONAL_SCOPED = "bidirectional_dynamic_rnn_scoped"
_DIRECTION_SCOPES = (names.FORWARD_SCOPE, names.BACKWARD_SCOPE)

_CELL_SCOPES = dict(names.LEGACY_CELL_SCOPES, **{s: s for s in names.CELL_VARIABLES})
# Cell scopes only TF <= 0.12 wrote: a stack holding one has TF 0.x scopes around it.
_TF0_CELL_SCOPES = renaming.TF0_CELL_SCOPES
# Cell leaves TF <= 1.1 wrote (`Linear/Matrix`, `W_0`, `weights`, ...): cells then kept no
# variables, so one set of cells given as both directions still made fw and bw variables.
_PRE_1_2_LEAF_RE = renaming.PRE_1_2_LEAF_RE
_LAYER_RE = renaming.LAYER_SCOPE_RE
_LEGACY_LAYER_RE = renaming.LEGACY_LAYER_SCOPE_RE
_BIDIRECTIONAL = {names.BIDIRECTIONAL_SCOPE: (names.FORWARD_SCOPE, names.BACKWARD_SCOPE),
                  names.LEGACY_BIDIRECTIONAL_SCOPE: tuple(names.LEGACY_DIRECTION_SCOPES)}
# Scopes of wrappers and legacy_seq2seq functions, which no TF 2 class rebuilds: a stack below
# one (or beside a tensor in one) has names by rule only.
_WRAPPERS = frozenset(set(names.LEGACY_LINEAR_SCOPES) | set(names.LEGACY_WRAPPER_SCOPES)
                      | set(names.LEGACY_WRAPPER_SCOPES.values()) | {
                          "embedding_rnn_seq2seq", "embedding_attention_seq2seq",
                          "embedding_tied_rnn_seq2seq", "basic_rnn_seq2seq", "tied_rnn_seq2seq",
                          "one2many_rnn_seq2seq", "rnn_decoder", "embedding_rnn_decoder",
                          "embedding_attention_decoder", "attention_wrapper", "AttentionWrapper",
                          "attention_layer", "memory_layer", "luong_attention",
                          "bahdanau_attention"})


@dataclasses.dataclass(frozen=True)
class StackGraph:
    """Today's graph that restores one stack: what `graph_names.build` builds.

    `call`: `dynamic_rnn` / `bidirectional_dynamic_rnn` run in variable scope `scope` ('' the
    root), BIDIRECTIONAL_SHARED (the same cells given as both directions), or `cell` (the cell called once in `scope`); `cell`: today's cell scope
    (`gru_cell`, ...); `input_depth`: layer 0's, from its kernel; `layers`: a MultiRNNCell of
    that many, or None (the cell alone); `share_from`: layers >= K are one legacy_share shared
    cell (None: every layer its own); `peepholes`, `num_proj`: LSTMCell's options.
    """

    scope: str
    call: str
    cell: str
    units: int
    input_depth: int
    layers: Optional[int] = None
    share_from: Optional[int] = None
    peepholes: bool = False
    num_proj: Optional[int] = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**data)


def describe(graph):
    """`dynamic_rnn(MultiRNNCell([GRUCell(8)] * 2)) in scope 'model', input depth 5`."""
    options = f"{graph.units}"
    if graph.peepholes:
        options += ", use_peepholes=True"
    if graph.num_proj:
        options += f", num_proj={graph.num_proj}"
    plain = f"{cell_kinds.by_scope(graph.cell).tf1_class}({options})"
    if graph.layers is None:
        cell = plain
    else:
        own = graph.layers if graph.share_from is None else min(graph.share_from, graph.layers)
        parts = [f"[{plain}] * {own}"] if own else []
        if own < graph.layers:
            parts.append(f"[Shared{plain}] * {graph.layers - own}")
        cell = f"MultiRNNCell({' + '.join(parts)})"
    if graph.call in (BIDIRECTIONAL, BIDIRECTIONAL_SCOPED):
        cell = f"{cell}, {cell}"
    if graph.call == BIDIRECTIONAL_SHARED:
        call = f"{BIDIRECTIONAL}({cell}, the same cells)"
    elif graph.call == BIDIRECTIONAL_SCOPED:
        return (f"{BIDIRECTIONAL}({cell}, scope={graph.scope!r}), input depth "
                f"{graph.input_depth}")
    else:
        call = f"{graph.call}({cell})" if graph.call != CELL_CALL else f"{cell} called"
    return f"{call} in scope {graph.scope or '<root>'!r}, input depth {graph.input_depth}"


@dataclasses.dataclass
class Stack:
    """One stack found in the input names: its call `scope` and `call` (from the input names),
    today's `cell`, whether it is in a MultiRNNCell, the stored `layers`, its input variable
    names (`sources`), `by_rule`: why no graph can be checked ('' when one can), and the
    stored `directions` of a bidirectional stack (0 fw, 1 bw)."""

    key: tuple
    scope: str
    call: str
    cell: str
    multi: bool
    layers: set
    sources: set
    by_rule: str = ""
    raw_base: str = ""
    directions: set = dataclasses.field(default_factory=set)


def stacks_of(source_names, rules=None):
    """The stacks among input names, keyed by where their cells live.

    Args:
      source_names: every input name.
      rules: the user's grouping.Rules: --rename applies first (the user's choice), a stack
        whose layers a --group pattern numbers or with an --exclude'd variable is by rule.
    Returns:
      [Stack], in key order; `sources` are input names.
    """
    rules = rules or grouping.Rules((), (), ())
    stacks, renamed = {}, {}
    for name in source_names:
        comps = grouping.user_renamed(name, rules)
        if renaming.variable_length(comps) == len(comps):
            renamed[name] = comps
    for name, comps in renamed.items():
        found = _locate(comps)
        if found is None:
            continue
        key, scope, call, cell, layer, raw_base, reason, direction = found
        stack = stacks.setdefault(key, Stack(key, scope, call, cell, layer is not None, set(),
                                             set(), raw_base=raw_base))
        stack.sources.add(name)
        stack.layers.add(layer or 0)
        stack.directions.update({direction} - {None})
        if any(r.fullmatch(c) for r in rules.group_patterns for c in comps):
            reason = reason or "a --group pattern numbers its layers: the graph is yours"
        if rules.excluded(name):
            reason = reason or f"--exclude keeps {name} as it is"
        stack.by_rule = stack.by_rule or reason
    owned = {n for s in stacks.values() for n in s.sources}
    for stack in stacks.values():
        beside = next((n for n, c in renamed.items() if n not in owned
                       and "/".join(c).startswith(stack.raw_base + "/")), None)
        if beside and not stack.by_rule:
            stack.by_rule = (f"{beside} lives in the scope its cell is called in (a wrapper "
                             f"or attention no TF 2 class rebuilds)")
    return [stacks[k] for k in sorted(stacks)]


def _locate(comps):
    """Where a variable's cell lives: (key, scope, call, cell, layer, raw base, by-rule why,
    direction: 0 fw, 1 bw, None outside a bidirectional call)."""
    length = len(comps)
    at = next((i for i in range(length - 1) if comps[i] in _CELL_SCOPES), None)
    if at is None:
        return None
    tf0 = comps[at] in _TF0_CELL_SCOPES
    base, layer = comps[:at], None
    if len(base) >= 2 and base[-2] in (names.MULTI_RNN_CELL_SCOPE,
                                       names.LEGACY_MULTI_RNN_CELL_SCOPE):
        match = _LAYER_RE.fullmatch(base[-1]) or _LEGACY_LAYER_RE.fullmatch(base[-1])
        if match:
            tf0 = tf0 or base[-2] == names.LEGACY_MULTI_RNN_CELL_SCOPE
            layer, base = int(match.group(1)), base[:-2]
    raw_base = "/".join(base)
    reason = ""
    wrapper = next((c for c in comps[:at] if c in _WRAPPERS), None)
    if wrapper:
        reason = f"its cell is inside {wrapper}, which no TF 2 class rebuilds"
    elif any(_LAYER_RE.fullmatch(c) or _LEGACY_LAYER_RE.fullmatch(c) for c in base):
        reason = "its layers are scopes of their own (stack_bidirectional_rnn or the like)"
    call, direction = CELL_CALL, None
    if len(base) >= 2 and base[-1] in _BIDIRECTIONAL.get(base[-2], ()):
        tf0 = tf0 or base[-2] == names.LEGACY_BIDIRECTIONAL_SCOPE
        direction = _BIDIRECTIONAL[base[-2]].index(base[-1])
        # both directions are one stack: bidirectional_dynamic_rnn builds both
        call, base = BIDIRECTIONAL, base[:-2]
    elif len(base) >= 2 and (base[-1] in _DIRECTION_SCOPES
                             or (tf0 and base[-1] in names.LEGACY_DIRECTION_SCOPES)):
        # bidirectional_dynamic_rnn(scope=base[:-1]); TF 0.x's bidirectional_rnn(scope=...)
        # wrote FW / BW, which today's is checked against (the plan reads them as fw / bw)
        direction = (_DIRECTION_SCOPES.index(base[-1]) if base[-1] in _DIRECTION_SCOPES
                     else _DIRECTION_SCOPES.index(names.LEGACY_DIRECTION_SCOPES[base[-1]]))
        call, base = BIDIRECTIONAL_SCOPED, base[:-1]
    elif base and (base[-1] == names.RNN_SCOPE
                   or (tf0 and base[-1] == names.LEGACY_RNN_SCOPE)):
        call, base = DYNAMIC_RNN, base[:-1]
    scope = "/".join(base)
    cell = _CELL_SCOPES[comps[at]]
    key = (scope, call, cell, layer is not None)
    return key, scope, call, cell, layer, raw_base, reason, direction


def graph_of(stack, planned, share_from=None, layers=None):
    """The StackGraph restoring `stack` whose outputs are `planned` {name: shape}.

    Args:
      stack: a Stack of `stacks_of`.
      planned: {output name: shape} the plan writes from the stack's inputs.
      share_from: the plan's (None: no layer merged).
      layers: the layer count of the output (unshare), None: the stored count.
    Raises:
      NameCheckError: no kernel of a cell of this kind among the planned names, or its
        shape fits no cell.
    """
    kind = cell_kinds.by_scope(stack.cell)
    # The sizing kernel, else another kernel the plan writes (a GRUCell without its candidate).
    kernels = kind.kernels()
    kernel, gates = next(((v, g) for v, g in kernels
                          if any(n.endswith(f"/{stack.cell}/{v}") for n in planned)),
                         kernels[-1])
    lowest = min(stack.layers)
    kernels = sorted((n, s) for n, s in planned.items()
                     if f"/{n}".endswith(f"/{stack.cell}/{kernel}"))
    chosen = next(((n, s) for n, s in kernels if f"/{names.layer_scope(lowest)}/" in f"/{n}"),
                  kernels[0] if kernels else None)
    if chosen is None:
        raise NameCheckError(f"the plan writes no {stack.cell}/{kernel} for the stack in "
                             f"scope {stack.scope or '<root>'!r} (it writes "
                             f"{', '.join(sorted(planned)) or 'nothing'})")
    name, shape = chosen
    projection = f"/{stack.cell}/{kind.projection}"
    proj = next((s for n, s in planned.items()
                 if kind.projection and n.endswith(projection) and len(s) == 2), None)
    units = shape[1] // gates if len(shape) == 2 else 0
    output = proj[1] if proj else units
    depth = shape[0] - output if len(shape) == 2 else 0
    if len(shape) != 2 or shape[1] % gates or units < 1 or depth < 1:
        raise NameCheckError(f"{name} {format_shape(shape)} is no {kind.tf1_class} "
                             f"kernel ([input_depth + units, {gates} * units])")
    peepholes = any(n.endswith(f"/{stack.cell}/{names.LSTM_PEEPHOLES[0]}") for n in planned)
    count = layers if layers is not None else max(stack.layers) + 1
    call, scope = stack.call, stack.scope
    if call == BIDIRECTIONAL_SCOPED and len(stack.directions) == 1:
        call, scope = CELL_CALL, stack.raw_base  # one direction: a cell called in `x/fw`
    if call == BIDIRECTIONAL and stack.directions == {0} and not _before_tf_1_2(stack):
        call = BIDIRECTIONAL_SHARED  # only fw stored: the graph that restores it shares cells
    return StackGraph(scope, call, stack.cell, units, depth,
                      count if stack.multi else None,
                      share_from if stack.multi else None,
                      peepholes and stack.cell == names.LSTM_SCOPE,
                      proj[1] if proj and stack.cell == names.LSTM_SCOPE else None)


def _before_tf_1_2(stack):
    """True when an input name of `stack` is a TF <= 1.1 cell variable name."""
    for source in stack.sources:
        comps = source.split("/")
        if (any(c in _TF0_CELL_SCOPES or c == names.LEGACY_MULTI_RNN_CELL_SCOPE for c in comps)
                or _PRE_1_2_LEAF_RE.fullmatch(comps[-1])):
            return True
    return False


def compare(graph, created, planned, source_of=lambda name: None):
    """Raises NameCheckError naming the first name where `planned` and `created` differ.

    A cell of which the checkpoint holds some variables but not all is not refused: every
    name written is still one TensorFlow creates, and the verdict says what is missing.

    Args:
      graph: the StackGraph built; created: {name: shape} TensorFlow created there.
      planned: {name: shape} the plan writes for the stack; source_of: output -> input name.
    Returns:
      "" when they are equal; else (a cell incomplete) "lacks NAME [shape] (and N more)".
    """
    missing = sorted(n for n in created if n not in planned)
    extra = sorted(n for n in planned if n not in created)
    wrong = sorted(n for n in planned if n in created and tuple(planned[n]) != tuple(created[n]))
    partial = []
    if not (extra or wrong):
        cells = {_cell_of(n) for n in planned}
        partial = [n for n in missing if _cell_of(n) in cells]
        missing = [n for n in missing if _cell_of(n) not in cells]
    if not (missing or extra or wrong):
        if not partial:
            return ""
        more = f" (and {len(partial) - 1} more)" if len(partial) > 1 else ""
        return (f"the checkpoint lacks {partial[0]} {format_shape(created[partial[0]])}{more}, "
                f"which {describe(graph)} creates")
    where = f"today's graph that restores it, {describe(graph)}"
    if wrong:
        name = wrong[0]
        text = (f"planned {name} {format_shape(planned[name])} but {where}, creates it as "
                f"{format_shape(created[name])}")
    elif missing and extra:
        text = (f"expected {missing[0]} {format_shape(created[missing[0]])} (created by "
                f"{where}) but planned {extra[0]} {format_shape(planned[extra[0]])}")
        name = extra[0]
    elif missing:
        name = missing[0]
        text = (f"expected {name} {format_shape(created[name])} (created by {where}), which "
                f"the plan does not write: the checkpoint does not hold it")
    else:
        name = extra[0]
        text = (f"planned {name} {format_shape(planned[name])}, which {where}, does not "
                f"create")
    source = source_of(name)
    text += f" (from {source})" if source else ""
    raise NameCheckError(f"names differ from TensorFlow's: {text}; nothing was written: "
                         f"check the stack's scope, layers and --rename options",
                         tensor=source)


def _cell_of(name):
    """The cell scope of a name: `a/multi_rnn_cell/cell_0/gru_cell` of `.../gates/kernel`."""
    comps = name.split("/")
    at = next((i for i in reversed(range(len(comps) - 1)) if comps[i] in names.CELL_VARIABLES),
              len(comps) - 1)
    return "/".join(comps[:at + 1])
