"""Today's name of every name TensorFlow ever gave an RNN's weights (pure: names in, names out).

The rules are the tables of `legacy_share.names`, applied on whole path components: scopes
(`RNN`, `BiRNN/FW`, `MultiRNNCell/Cell0`, wrappers), then the variables below a cell scope
(`GRUCell/Gates/Linear/Matrix`, `lstm_cell/weights/part_1`, `LSTMBlockCell/W`, ...) or below a
scope holding a `_linear` (`attention_decoder/Attention_0/Linear/Matrix`). Optimizer slots and
moving averages (`<var>/Adam`) keep their suffix, so they follow their variable.
"""

import re

from legacy_share import cell_kinds
from legacy_share import names

__all__ = [
    "OPTIMIZER_SLOT_NAMES",
    "MOVING_AVERAGE_NAME",
    "SLOT_RE",
    "MOVING_AVERAGE_RE",
    "OPTIMIZER_GLOBAL_RE",
    "TRAINING_COUNTER_RE",
    "LAYER_SCOPE_RE",
    "LEGACY_LAYER_SCOPE_RE",
    "TF0_CELL_SCOPES",
    "PRE_1_2_LEAF_RE",
    "variable_length",
    "optimizer_state",
    "gru_block_kernels",
    "migrate_name",
    "find_cell_variable",
    "today_cell_scope",
]

# Slot names TF1 optimizers give by default (`<var>/Adam`, `<var>/Adam_1`, ...).
OPTIMIZER_SLOT_NAMES = (
    "Adam", "Momentum", "RMSProp", "Adagrad", "AdagradDA", "ProximalAdagrad", "Adadelta",
    "Ftrl", "AdaMax", "Nadam", "LazyAdam", "AdamW", "MomentumW",
)
MOVING_AVERAGE_NAME = "ExponentialMovingAverage"
# Each naming rule below is written once; every module that recognises such a name imports it.
SLOT_RE = re.compile(r"(?:%s)(?:_\d+)*" % "|".join(OPTIMIZER_SLOT_NAMES))
MOVING_AVERAGE_RE = re.compile(re.escape(MOVING_AVERAGE_NAME) + r"(?:_\d+)*")
OPTIMIZER_GLOBAL_RE = re.compile(r"beta\d_power(?:_\d+)*")  # Adam-family beta1/beta2_power
# Training counters: the optimizer globals and the step counter (never part of a computation).
TRAINING_COUNTER_RE = re.compile(OPTIMIZER_GLOBAL_RE.pattern + r"|global_step")
LAYER_SCOPE_RE = re.compile(names.LAYER_SCOPE_FORMAT.format(r"(\d+)"))  # cell_3 -> 3
LEGACY_LAYER_SCOPE_RE = re.compile(names.LEGACY_LAYER_SCOPE_FORMAT.format(r"(\d+)"))  # Cell3
# Cell scopes only TF <= 0.12 wrote, and cell leaves TF <= 1.1 wrote (`Linear/Matrix`, `W_0`,
# `weights`, ...; docs/naming.md): cells then kept no variables of their own.
TF0_CELL_SCOPES = frozenset(cell_kinds.legacy_scopes(cell_kinds.TF0, cell_kinds.TF0_TO_1_1))
PRE_1_2_LEAF_RE = re.compile(r"Matrix|Bias|B|W(?:_P)?_\d+|W_[FIO]_diag|weights|biases")


def variable_length(comps):
    """Number of leading path components naming the variable (trailing slot/EMA names removed)."""
    n = len(comps)
    while n > 1 and any(r.fullmatch(comps[n - 1]) for r in (SLOT_RE, MOVING_AVERAGE_RE)):
        n -= 1
    return n


def optimizer_state(name, shape):
    """Why tensor `name` of `shape` is optimizer state (a slot or an optimizer global), or None."""
    comps = name.split("/")
    last = comps[-1]
    if len(comps) > 1 and SLOT_RE.fullmatch(last):
        return f"optimizer slot {last!r} of {'/'.join(comps[:-1])} (drop_optimizer_state)"
    if OPTIMIZER_GLOBAL_RE.fullmatch(last) and tuple(shape) == ():
        return f"optimizer global {last!r} (drop_optimizer_state)"
    return None


def gru_block_kernels(shapes):
    """Which GRUBlockCell kernel is which, by shape: {variable name: today's piece}.

    Args:
      shapes: {input name: shape} of the whole checkpoint.

    Returns:
      For each `w_ru` / `w_c` variable below a GRU cell scope: `gates/kernel` for the kernel
      with the most columns in its scope ([d+n, 2n]), `candidate/kernel` for the other
      ([d+n, n]). Names are not trusted: for a day in Dec 2017 TF's master saved them swapped.
    """
    scopes = {}
    for name, shape in shapes.items():
        comps = name.split("/")
        if variable_length(comps) != len(comps) or len(comps) < 2 or len(shape) != 2:
            continue
        scope = _cell_scope(comps[-2])
        if scope == names.GRU_SCOPE and comps[-1] in names.GRU_BLOCK_KERNELS:
            scopes.setdefault("/".join(comps[:-1]), []).append((shape[1], name))
    roles = {}
    gates = f"{names.GRU_GATES}/{names.KERNEL}"
    candidate = f"{names.GRU_CANDIDATE}/{names.KERNEL}"
    for kernels in scopes.values():
        if len(kernels) == 2 and kernels[0][0] != kernels[1][0]:
            (_, narrow), (_, wide) = sorted(kernels)
            roles[wide], roles[narrow] = gates, candidate
        else:
            for _, name in kernels:
                roles[name] = gates if name.endswith("/w_ru") else candidate
    return roles


def migrate_name(comps, gru_kernel=None, legacy_scopes=True):
    """Built-in renames of one name's components.

    Args:
      comps: the input name split on `/` (after the user's renames).
      gru_kernel: for a GRUBlockCell kernel (`w_ru`, `w_c`) or one of its slots, its piece
        from `gru_block_kernels`; None otherwise.
      legacy_scopes: rename TF 0.x scopes (`RNN`, `BiRNN/FW`, `MultiRNNCell/Cell0`, the
        wrappers' class names); only for names of a TF 0.x stack (`generations`). Without
        it every scope component is kept as written: only the cell's own variables (and a
        lowercase wrapper's `weights` / `biases`) are renamed.

    Returns:
      (today's name, shard index or None).
    """
    if legacy_scopes:
        comps = _rename_scopes(comps)
    renamed = _rename_cell_variable(comps, gru_kernel)
    if renamed is None:
        renamed = _rename_linear_variable(comps, legacy_scopes), None
    return renamed


def find_cell_variable(comps):
    """Where a cell's own variable lies in `comps` (an input name split on `/`), or None.

    Returns:
      (position of the cell scope, the legacy or today's variable path it matched, as
      written in `names.LEGACY_CELL_VARIABLES` / `names.CELL_VARIABLES`, e.g. `Linear/Matrix`,
      `weights/part_{}`, `kernel`): the first cell scope followed by one of its variable paths.
    """
    length = variable_length(comps)
    for i in range(length - 1):
        scope = _CELL_SCOPES.get(comps[i])
        if scope is None:
            continue
        if i + 2 == length and comps[i + 1] in names.GRU_BLOCK_KERNELS and scope == names.GRU_SCOPE:
            return i, comps[i + 1]
        for patterns, _, _, old in _CELL_RULES[scope]:
            if i + 1 + len(patterns) <= length and all(
                    p.fullmatch(c) for p, c in zip(patterns, comps[i + 1:i + 1 + len(patterns)])):
                return i, old
    return None


def today_cell_scope(comp):
    """Today's cell scope for cell scope `comp` (`GRUCell` -> `gru_cell`), or None if not one."""
    return _CELL_SCOPES.get(comp)


_cell_scope = today_cell_scope


def _rename_scopes(comps):
    out = list(comps)
    for i in range(variable_length(comps) - 1):  # never the variable's own leaf name
        comp, parent = comps[i], comps[i - 1] if i else None
        if comp == names.LEGACY_RNN_SCOPE:
            out[i] = names.RNN_SCOPE
        elif comp == names.LEGACY_BIDIRECTIONAL_SCOPE:
            out[i] = names.BIDIRECTIONAL_SCOPE
        elif comp == names.LEGACY_MULTI_RNN_CELL_SCOPE:
            out[i] = names.MULTI_RNN_CELL_SCOPE
        elif parent == names.LEGACY_BIDIRECTIONAL_SCOPE and comp in names.LEGACY_DIRECTION_SCOPES:
            out[i] = names.LEGACY_DIRECTION_SCOPES[comp]
        elif parent == names.LEGACY_MULTI_RNN_CELL_SCOPE and LEGACY_LAYER_SCOPE_RE.fullmatch(comp):
            out[i] = names.layer_scope(int(LEGACY_LAYER_SCOPE_RE.fullmatch(comp).group(1)))
        elif comp in names.LEGACY_WRAPPER_SCOPES:
            out[i] = names.LEGACY_WRAPPER_SCOPES[comp]
        elif comp in names.LEGACY_LINEAR_SCOPES:
            out[i] = names.LEGACY_LINEAR_SCOPES[comp]
    return out


def _compile_table(table):
    """{legacy path: today's path} -> [(component regexes, today's components, sharded, legacy
    path)], longest first."""
    entries = []
    for old, new in table.items():
        comps = [re.compile(r"(\d+)".join(re.escape(p) for p in c.split("{}")))
                 for c in old.split("/")]
        entries.append((comps, new.split("/"), "{}" in old, old))
    entries.sort(key=lambda entry: -len(entry[0]))
    return entries


def _cell_rules():
    """Today's cell scope -> rules; today's own pieces map to themselves (a renamed scope)."""
    rules = {}
    for scope, table in names.LEGACY_CELL_VARIABLES.items():
        table = dict(table, **{piece: piece for piece in names.CELL_VARIABLES[scope]})
        rules[scope] = _compile_table(table)
    return rules


_CELL_RULES = _cell_rules()
_CELL_SCOPES = dict(names.LEGACY_CELL_SCOPES, **{s: s for s in names.CELL_VARIABLES})
_LINEAR_RULES = _compile_table(names.LEGACY_LINEAR_VARIABLES)


def _rename_cell_variable(comps, gru_kernel):
    """Renames the first cell scope followed by one of its variable paths; None if there is none."""
    length = variable_length(comps)
    for i in range(length - 1):
        scope = _CELL_SCOPES.get(comps[i])
        if scope is None:
            continue
        if gru_kernel and i + 2 == length and comps[i + 1] in names.GRU_BLOCK_KERNELS:
            return "/".join(comps[:i] + [scope] + gru_kernel.split("/") + comps[length:]), None
        for patterns, new, sharded, _ in _CELL_RULES[scope]:
            segment = comps[i + 1:i + 1 + len(patterns)]
            if len(segment) < len(patterns) or i + 1 + len(patterns) > length:
                continue
            matches = [p.fullmatch(c) for p, c in zip(patterns, segment)]
            if all(matches):
                shard = int(matches[-1].group(1)) if sharded else None
                rest = comps[i + 1 + len(patterns):]
                return "/".join(comps[:i] + [scope] + new + rest), shard
    return None


def _rename_linear_variable(comps, legacy_scopes=True):
    """Below a linear scope: renames its inner scopes and the legacy variable ending the path.

    Without `legacy_scopes`, only scopes spelt as today (`output_projection_wrapper`) count.
    """
    length = variable_length(comps)
    for i in range(length - 1):
        scope = names.LEGACY_LINEAR_SCOPES.get(comps[i])
        if scope is None or not (legacy_scopes or scope == comps[i]):
            continue
        inner = names.LEGACY_LINEAR_INNER_SCOPES.get(scope, {})
        for patterns, new, _, _ in _LINEAR_RULES:
            start = length - len(patterns)
            if start > i and all(p.fullmatch(c) for p, c in zip(patterns, comps[start:length])):
                middle = [inner.get(c, c) for c in comps[i + 1:start]]
                return "/".join(comps[:i + 1] + middle + new + comps[length:])
        middle = [inner.get(c, c) for c in comps[i + 1:length - 1]]
        return "/".join(comps[:i + 1] + middle + comps[length - 1:])
    return "/".join(comps)
