"""Where TF >= 1.2 puts the cell a legacy Embedding-, OutputProjection- or InputProjectionWrapper
wraps (pure).

Up to TF 1.1 these wrappers opened their scope around their own variables only and called the
wrapped cell beside it: `RNN/EmbeddingWrapper/embedding` next to `RNN/MultiRNNCell/Cell0/...`
(TF 0.x), `rnn_decoder/output_projection_wrapper/weights` next to `rnn_decoder/multi_rnn_cell/...`
(TF 1.0 - 1.1). From TF 1.2 a wrapper is a layer whose scope holds the wrapped cell too:
`rnn/embedding_wrapper/multi_rnn_cell/cell_0/...`, `rnn_decoder/output_projection_wrapper/
multi_rnn_cell/...` (contrib/rnn/python/ops/core_rnn_cell.py r1.2 - r1.15). legacy_seq2seq's
embedding_rnn_seq2seq, embedding_tied_rnn_seq2seq and embedding_attention_seq2seq build exactly
this: the encoder cell inside an EmbeddingWrapper under `rnn`, the decoder cell inside an
OutputProjectionWrapper (when no `output_projection` is given) under `rnn_decoder`,
`attention_decoder` or `tied_rnn_seq2seq`.

`wrapped_cells` finds, in a whole checkpoint, the legacy scopes where a wrapper sits beside the
cell it wraps; its `relocate` moves a name's cell into the wrapper's scope, still in its own
generation's spelling, before `legacy_share.renaming` gives it today's names. Where the names
do not say for certain which cell a wrapper wraps, `wrapped_cells` refuses.

No TF 2 class builds these graphs, so their names cannot be checked against a graph:
`names_by_rule` tells the planner which names these rules made.
"""

import re

from legacy_share import cell_kinds
from legacy_share import names
from legacy_share import renaming
from legacy_share.errors import PlanError

__all__ = ["NO_GRAPH", "SEQ2SEQ_SCOPES", "WrappedCells", "wrapped_cells", "names_by_rule",
           "plan_notes"]

NO_GRAPH = "names by rule; no graph to check against"

# Variable scopes legacy_seq2seq opens (r0.12 python/ops/seq2seq.py, r1.0 - r1.15
# contrib/legacy_seq2seq/python/ops/seq2seq.py) and the wrappers' TF >= 1.2 layer scopes: no
# TF 2 class creates a name below one of them.
SEQ2SEQ_SCOPES = (
    "basic_rnn_seq2seq", "tied_rnn_seq2seq", "combined_tied_rnn_seq2seq",
    "embedding_rnn_seq2seq", "embedding_tied_rnn_seq2seq", "embedding_attention_seq2seq",
    "one2many_rnn_seq2seq", "rnn_decoder", "embedding_rnn_decoder", "attention_decoder",
    "embedding_attention_decoder", "embedding_wrapper", "output_projection_wrapper",
    "input_projection_wrapper",
)

# A legacy wrapper scope -> (its own variable paths, the generation that spelled them).
# `embedding_wrapper/embedding` is also today's name; it is legacy only with a cell beside it.
_WRAPPERS = {
    "EmbeddingWrapper": (("embedding",), "TF 0.x"),
    "OutputProjectionWrapper": (("Linear/Matrix", "Linear/Bias"), "TF 0.x"),
    "embedding_wrapper": (("embedding",), "TF 1.0"),
    "output_projection_wrapper": (("weights", "biases"), "TF 1.0"),
    "InputProjectionWrapper": (("Linear/Matrix", "Linear/Bias"), "TF 0.x"),
    "input_projection_wrapper": (("weights", "biases"), "TF 1.0"),
}
# Scopes in which one cell is called and nothing else is: static_rnn / dynamic_rnn (`RNN`,
# `rnn`), rnn_decoder, tied_rnn_seq2seq's static_rnn and rnn_decoder, and attention_decoder
# (which also holds its own attention variables, `_ATTENTION_OWN`).
_ONE_CELL_SCOPES = ("RNN", "rnn", "rnn_decoder", "tied_rnn_seq2seq", "attention_decoder")
# ... and each direction of a bidirectional RNN, below its own parent scope.
_DIRECTION_SCOPES = {(names.LEGACY_BIDIRECTIONAL_SCOPE, d) for d in names.LEGACY_DIRECTION_SCOPES}
_DIRECTION_SCOPES |= {(names.BIDIRECTIONAL_SCOPE, d)
                      for d in (names.FORWARD_SCOPE, names.BACKWARD_SCOPE)}
_ATTENTION_OWN = re.compile(r"AttnW_\d+|AttnV_\d+|Attention_\d+|AttnOutputProjection|Linear"
                            r"|weights|biases")
_MULTI_CELL_SCOPES = (names.LEGACY_MULTI_RNN_CELL_SCOPE, names.MULTI_RNN_CELL_SCOPE)
# Cell scopes whose names say their generation; the contrib block cells' do not (GRUBlockCell
# kept its name up to TF 1.4, the fused LSTMs are not RNNCells and cannot be wrapped).
_CELL_GENERATION = {scope: "TF 0.x"
                    for scope in cell_kinds.legacy_scopes(cell_kinds.TF0, cell_kinds.TF0_TO_1_1)}
_CELL_GENERATION.update({scope: None for scope in names.CELL_VARIABLES})  # by the leaf
_UNTOLD_CELLS = cell_kinds.legacy_scopes(cell_kinds.UNTOLD)
_TODAY = "TF >= 1.2"
_TF1_OR_TODAY = "TF >= 1.0"
_TRIE = ()  # a key no path component can be


def wrapped_cells(variable_names):
    """The legacy scopes whose cell a wrapper beside it wraps.

    Args:
      variable_names: every name of the checkpoint (slots and moving averages included), or
        {name: the input name a refusal reports} when the names were renamed by the user.

    Returns:
      WrappedCells: {scope (tuple of components): the wrapper component to put the scope's
      cell into}, and `relocate(comps)` that does it.

    Raises:
      PlanError: a legacy wrapper sits beside a cell the names cannot tie to it for certain
        (a scope that is not one RNN's, two wrappers, a cell of another generation, or a
        variable that is neither the cell's nor the scope's own); `tensor` is one such input.
    """
    reported = (dict(variable_names) if isinstance(variable_names, dict)
                else {name: name for name in variable_names})
    split = [name.split("/") for name in reported]
    wrappers = {}
    for comps in split:
        length = renaming.variable_length(comps)
        for i in range(max(0, length - 3), length - 1):  # own paths are 1 or 2 components
            own = _WRAPPERS.get(comps[i])
            if own and "/".join(comps[i + 1:length]) in own[0]:
                wrappers.setdefault(tuple(comps[:i]), set()).add(comps[i])
    trie = _trie(wrappers)
    below = {scope: [] for scope in wrappers}
    for comps in split if wrappers else ():
        for scope in _scopes_along(trie, comps):
            if comps[len(scope)] not in wrappers[scope]:
                below[scope].append(comps)
    moves = {}
    for scope, found in sorted(wrappers.items()):
        beside = below[scope]
        cells = [c for c in beside if _is_cell_root(c[len(scope)])]
        wrapper = _check_scope(scope, found, cells, beside, reported) if cells else None
        if wrapper:
            moves[scope] = wrapper
    return WrappedCells(moves)


class WrappedCells:
    """The moves `wrapped_cells` found: `moves` {scope (tuple): wrapper component}."""

    def __init__(self, moves):
        self.moves = dict(moves)
        self._trie = _trie(self.moves)

    def relocate(self, comps):
        """`comps` with its cell moved into its scope's wrapper (a new list)."""
        inside = [scope for scope in _scopes_along(self._trie, comps)
                  if _is_cell_root(comps[len(scope)])]
        if not inside:
            return list(comps)
        end = len(inside[-1])
        return list(comps[:end]) + [self.moves[inside[-1]]] + list(comps[end:])


def _trie(scopes):
    """Nested dicts of the scopes' components; `_TRIE` marks where a scope ends."""
    root = {}
    for scope in scopes:
        node = root
        for comp in scope:
            node = node.setdefault(comp, {})
        node[_TRIE] = scope
    return root


def _scopes_along(trie, comps):
    """The scopes of `trie` that are proper prefixes of `comps`, shortest first (linear time)."""
    node, found = trie, []
    for comp in comps:
        if _TRIE in node:
            found.append(node[_TRIE])
        node = node.get(comp)
        if node is None:
            break
    return found


def names_by_rule(name):
    """NO_GRAPH when today's `name` lies below a legacy_seq2seq or wrapper scope, else None."""
    comps = name.split("/")
    if any(comp in SEQ2SEQ_SCOPES for comp in comps[:renaming.variable_length(comps) - 1]):
        return NO_GRAPH
    return None


def plan_notes(output_names):
    """One plan note per outermost legacy_seq2seq or wrapper scope among today's names."""
    scopes = set()
    for name in output_names:
        comps = name.split("/")
        for i, comp in enumerate(comps[:renaming.variable_length(comps) - 1]):
            if comp in SEQ2SEQ_SCOPES:
                scopes.add("/".join(comps[:i + 1]))
                break
    return [f"{scope}: {NO_GRAPH} (no TF 2 class builds legacy_seq2seq or its wrappers; the "
            f"names follow TF 1.2 - 1.15's sources)" for scope in sorted(scopes)]


def _check_scope(scope, found, cells, beside, reported):
    """The one wrapper of `scope` whose cell `cells` are, None when they need no move (today's
    names); PlanError when that is not certain."""
    where = "/".join(scope) or "the top scope"
    wrapper = sorted(found)[0]

    def refuse(comps, why):
        tensor = reported["/".join(comps)]
        return PlanError(f"cannot tell where TF >= 1.2 puts {tensor}: {why}; move it yourself "
                         f"with --rename or leave it out with --exclude", tensor=tensor)

    generations = [_generation(comps, len(scope)) for comps in cells]
    if found == {"embedding_wrapper"} and all(_fits(g, _TODAY) for g in generations):
        return None  # today's wrapper holds its cell; this one is another RNN's
    if len(found) > 1:
        raise refuse(cells[0], f"{where} holds the wrappers {' and '.join(sorted(found))} "
                               f"beside the cell, and the names do not say which wraps which")
    if not scope or (scope[-1] not in _ONE_CELL_SCOPES
                     and tuple(scope[-2:]) not in _DIRECTION_SCOPES):
        raise refuse(cells[0], f"{where} is not the scope of an RNN or a legacy_seq2seq "
                               f"decoder, so the names do not say that {wrapper} wraps this cell")
    roots = sorted({comps[len(scope)] for comps in cells})
    if len(roots) > 1:
        raise refuse(cells[0], f"{where} holds the cells {' and '.join(roots)} beside {wrapper}, "
                               f"and the names do not say which one it wraps")
    own = _ATTENTION_OWN if scope[-1] == "attention_decoder" else None
    others = [c for c in beside if c not in cells and not (own and own.fullmatch(c[len(scope)]))]
    if others:
        raise refuse(others[0], f"it is neither the cell nor {wrapper}'s own in {where}, so "
                                f"where TF >= 1.2 puts it is not known")
    expected = _WRAPPERS[wrapper][1]
    for comps, generation in zip(cells, generations):
        if not _fits(generation, expected):
            told = (f"a {generation} cell" if generation
                    else "a cell whose names do not say its TF version")
            raise refuse(comps, f"it is {told} beside the {expected} wrapper {wrapper} in "
                                f"{where}; a legacy_seq2seq graph has one generation of names")
    return wrapper


def _fits(generation, wanted):
    return generation == wanted or (generation == _TF1_OR_TODAY and wanted in ("TF 1.0", _TODAY))


def _is_cell_root(comp):
    return comp in _MULTI_CELL_SCOPES or comp in _CELL_GENERATION or comp in _UNTOLD_CELLS


def _generation(comps, start):
    """'TF 0.x', 'TF 1.0', 'TF >= 1.2', 'TF >= 1.0' (a peephole) or None (untold) for the cell
    variable `comps`."""
    length = renaming.variable_length(comps)
    for i in range(start, length - 1):
        comp = comps[i]
        if comp in _UNTOLD_CELLS:
            return None
        if comp not in _CELL_GENERATION:
            continue
        if _CELL_GENERATION[comp]:
            return _CELL_GENERATION[comp]
        leaf = "/".join(comps[i + 1:length])
        if leaf in names.LSTM_PEEPHOLES:  # spelled alike in TF 1.0 and today
            return _TF1_OR_TODAY
        return _TODAY if leaf in names.CELL_VARIABLES[comp] else "TF 1.0"
    return None
