"""Which stacks make one model, and in which order (pure): fw/bw halves under any scope paired
into one bidirectional stack, and stacks chained in the order the data flows.

A checkpoint stores no wiring between stacks. The order is the user's (`--stack A --stack B`,
checked by shapes: each stack's input depth is the output width of the one before) or, with no
--stack, the one order of ALL stacks whose shapes connect; two orders that both fit, or none,
are refused. Works on the export's `structure.Stack`s (scope, depths, output, directions).
"""

import itertools

from legacy_share import cell_kinds
from legacy_share import names
from legacy_share import renaming
from legacy_share.errors import ExportError

__all__ = ["DIRECTIONS", "direction_position", "order", "describe", "ASSUMED"]

# The direction component of a bidirectional_dynamic_rnn's cells (TF 0.x wrote FW / BW).
DIRECTIONS = {names.FORWARD_SCOPE: names.FORWARD_SCOPE, names.BACKWARD_SCOPE: names.BACKWARD_SCOPE,
              **names.LEGACY_DIRECTION_SCOPES}
# The permutations tried to find the order by itself: 8 stacks are 40320 orders.
_MOST_STACKS_ORDERED = 8
ASSUMED = ("the stacks feed each other directly: no residual connection, attention or other "
           "layer between them (a checkpoint stores none of them; ResidualWrapper and "
           "DropoutWrapper store no variables)")


def direction_position(prefix):
    """The index in `prefix` (the components above a cell) of its direction scope, or None.

    `bidirectional_rnn/fw` anywhere (TensorFlow's own scope), or a `fw` / `bw` (`FW` / `BW`)
    component right above the cell or its `multi_rnn_cell/cell_k`: bidirectional_dynamic_rnn
    (scope=ANY) calls each direction's cell directly in `ANY/fw`, where dynamic_rnn would have
    put an `rnn` scope between.
    """
    for j in range(1, len(prefix)):
        if prefix[j] in (names.FORWARD_SCOPE, names.BACKWARD_SCOPE) and \
                prefix[j - 1] == names.BIDIRECTIONAL_SCOPE:
            return j
    j = len(prefix) - 1
    if len(prefix) >= 3 and prefix[-2] == names.MULTI_RNN_CELL_SCOPE \
            and renaming.LAYER_SCOPE_RE.fullmatch(prefix[-1]):
        j = len(prefix) - 3
    if j >= 1 and prefix[j] in DIRECTIONS:
        return j
    return None


def _width(stack):
    return stack.output * stack.directions


def _connects(before, after):
    return after.depths[0] == _width(before)


def _resolve(prefix, stacks, wanted):
    """The stack under scope `wanted` (its scope or a prefix of exactly one)."""
    wanted = wanted.strip("/")
    found = [s for s in stacks if s.scope == wanted or s.scope.startswith(wanted + "/")]
    if not found:
        raise ExportError(f"{prefix}: no stack under --stack {wanted}; the stacks are: "
                          f"{', '.join(s.scope for s in stacks)}")
    if len(found) > 1:
        raise ExportError(f"{prefix}: --stack {wanted} matches {len(found)} stacks "
                          f"({', '.join(s.scope for s in found)}); name one of them")
    return found[0]


def describe(stack):
    """`bi/{fw,bw}/gru_cell (4 -> 2 x 6)`: a stack with its input depth and output width."""
    width = f"2 x {stack.output}" if stack.directions == 2 else f"{stack.output}"
    return f"{stack.scope} ({stack.depths[0]} -> {width})"


def order(prefix, stacks, wanted):
    """(the stacks exported in data-flow order, how the order was found: "" / text).

    Args:
      prefix: the checkpoint, for messages; stacks: every stack found.
      wanted: None, a scope, or scopes in data-flow order (`--stack A --stack B`).
    Raises:
      ExportError: no stack; a scope matching none or several; stacks whose shapes do not
        connect in the order given; with no --stack, several stacks and not one order of all of
        them that connects.
    """
    if not stacks:
        raise ExportError(f"{prefix}: holds no RNN cell variables ("
                          f"{', '.join(kind.tf1_class for kind in cell_kinds.KINDS)} in any "
                          f"naming generation); check with `legacy-share inspect`, or map the "
                          f"names with --rename")
    scopes = [wanted] if isinstance(wanted, str) else list(wanted or ())
    if scopes:
        chain = [_resolve(prefix, stacks, scope) for scope in scopes]
        twice = next((s for i, s in enumerate(chain) if s in chain[:i]), None)
        if twice is not None:
            raise ExportError(f"{prefix}: --stack names {twice.scope} twice; give each stack "
                              f"once, in the order the data flows")
        for before, after in zip(chain, chain[1:]):
            if not _connects(before, after):
                raise ExportError(
                    f"{prefix}: {describe(before)} outputs width {_width(before)} but the next "
                    f"--stack {describe(after)} takes input depth {after.depths[0]}: the "
                    f"stacks do not connect in this order; pass them with --stack in the order "
                    f"the data flows, or export them one at a time")
        return tuple(chain), ("the order of --stack" if len(chain) > 1 else "")
    if len(stacks) == 1:
        return tuple(stacks), ""
    return _found_order(prefix, stacks)


def _found_order(prefix, stacks):
    listed = ", ".join(describe(s) for s in stacks)
    if len(stacks) > _MOST_STACKS_ORDERED:
        raise ExportError(f"{prefix}: holds {len(stacks)} RNN stacks ({listed}); choose one "
                          f"with --stack SCOPE, or chain them with --stack A --stack B ... in "
                          f"the order the data flows")
    fits = []
    for chain in itertools.permutations(stacks):
        if all(_connects(a, b) for a, b in zip(chain, chain[1:])):
            fits.append(chain)
            if len(fits) > 1:
                break
    if len(fits) == 1:
        return fits[0], "found from the shapes: the only order of all stacks that connects"
    if not fits:
        why = "no order of them connects (each stack's input depth the width of the one before)"
    else:
        why = (f"both {' -> '.join(s.scope for s in fits[0])} and "
               f"{' -> '.join(s.scope for s in fits[1])} connect, so the shapes cannot tell "
               f"the order")
    raise ExportError(f"{prefix}: holds {len(stacks)} RNN stacks ({listed}) and {why}; choose "
                      f"one with --stack SCOPE, or chain them with --stack A --stack B ... in "
                      f"the order the data flows")
