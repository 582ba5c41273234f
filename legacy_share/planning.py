"""The pure core of the migrator: from a checkpoint's names, shapes and dtypes to a plan.

Nothing here reads or writes files or imports TensorFlow: a plan is data that can be printed
(dry run), tested, and executed by `legacy_share.writing`.

How a writer executes a Step: split `sources` into `len(layers) or 1` runs of `shards` names
(layer-major, see `Step.layer_sources`); concatenate each run on axis 0 (a run of one is the
tensor itself); then COPY / RENAME / DUPLICATE write the single result under `name`, and MERGE
makes one tensor from the per-layer results by the plan's strategy.
"""

import dataclasses
import json
import re
from typing import Optional, Tuple

from legacy_share import names
from legacy_share.patterns import compile_pattern, compile_rename
from legacy_share.errors import PlanError

__all__ = [
    "TensorSpec",
    "Strategy",
    "Step",
    "Drop",
    "Plan",
    "LayerGroup",
    "plan_migration",
    "plan_unshare",
    "find_layer_groups",
    "migrated_name",
]

COPY = "copy"            # same name, bit for bit
RENAME = "rename"        # new name, bit for bit
MERGE = "merge"          # one tensor from the layers of a group, by the plan's strategy
DUPLICATE = "duplicate"  # unshare: the shared tensor written under one layer's name

# Slot names TF1 optimizers give by default (`<var>/Adam`, `<var>/Adam_1`, ...).
OPTIMIZER_SLOT_NAMES = (
    "Adam", "Momentum", "RMSProp", "Adagrad", "AdagradDA", "ProximalAdagrad", "Adadelta",
    "Ftrl", "AdaMax", "Nadam", "LazyAdam", "AdamW", "MomentumW",
)
MOVING_AVERAGE_NAME = "ExponentialMovingAverage"
_SLOT_RE = re.compile(r"(?:%s)(?:_\d+)*" % "|".join(OPTIMIZER_SLOT_NAMES))
_MOVING_AVERAGE_RE = re.compile(re.escape(MOVING_AVERAGE_NAME) + r"(?:_\d+)*")
_OPTIMIZER_GLOBAL_RE = re.compile(r"beta\d_power(?:_\d+)*")  # Adam-family beta1/beta2_power
_LAYER_RE = re.compile(names.LAYER_SCOPE_FORMAT.format(r"(\d+)"))
_LEGACY_LAYER_RE = re.compile(names.LEGACY_LAYER_SCOPE_FORMAT.format(r"(\d+)"))
# Dtypes `mean` averages (in float64): the real floating-point dtypes, by their TF names.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
_STRATEGY_FORMS = "first, layer:K (K = a layer index, e.g. layer:1), mean, strict"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A checkpoint entry: `name`, full `shape` (tuple of ints), TF `dtype` name ("float32", "string")."""

    name: str
    shape: Tuple[int, ...]
    dtype: str


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How a layer group becomes one tensor: `first`, `layer:K`, `mean` or `strict` (within `tolerance`).

    `first` takes the lowest layer index present: layer 0 of a MultiRNNCell stack, layer 1 of a
    `--group 'layer(\\d+)'` stack numbered from 1.
    """

    kind: str
    layer: Optional[int] = None
    tolerance: float = 0.0

    @classmethod
    def parse(cls, text, tolerance=0.0):
        """`"first"`, `"layer:2"`, `"mean"`, `"strict"` -> Strategy; PlanError on anything else."""
        given = tolerance
        try:
            tolerance = float(tolerance)
        except (TypeError, ValueError):
            tolerance = float("nan")
        if not tolerance >= 0.0:
            raise PlanError(f"tolerance must be a number >= 0, got {given!r}")
        kind = str(text).strip().lower()
        if kind in ("first", "mean", "strict"):
            return cls(kind, None, tolerance)
        match = re.fullmatch(r"layer\s*:\s*(\d+)", kind)
        if match:
            return cls("layer", int(match.group(1)), tolerance)
        raise PlanError(f"unknown strategy {text!r}; use one of: {_STRATEGY_FORMS}")

    def __str__(self):
        return f"layer:{self.layer}" if self.kind == "layer" else self.kind


@dataclasses.dataclass(frozen=True)
class Step:
    """One output tensor and how it is made from `sources` (input names, in layer order for MERGE).

    `layers`: the layer index of each source layer of a MERGE, ascending (empty otherwise).
    `shards` > 1: every layer is `shards` consecutive sources to concatenate on axis 0 in order
    (layer L shard k is `sources[L_position * shards + k]`); `shape` is the concatenated shape.
    """

    name: str
    shape: Tuple[int, ...]
    dtype: str
    action: str
    sources: Tuple[str, ...]
    layers: Tuple[int, ...] = ()
    shards: int = 1

    def layer_sources(self):
        """Sources split per layer: a tuple (one per layer, or one) of tuples of `shards` names."""
        k = self.shards
        return tuple(self.sources[i:i + k] for i in range(0, len(self.sources), k))


@dataclasses.dataclass(frozen=True)
class Drop:
    """An input tensor left out of the output, and why."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every output tensor (`steps`, sorted by name) and every dropped input (`dropped`).

    `strategy` is None for an unshare plan (it has no MERGE steps).
    """

    steps: Tuple[Step, ...]
    dropped: Tuple[Drop, ...]
    strategy: Strategy

    def to_dict(self):
        """JSON-ready form: {"strategy", "steps": [...], "dropped": [...]}."""
        strategy = None if self.strategy is None else dataclasses.asdict(self.strategy)
        steps = [dict(name=s.name, shape=list(s.shape), dtype=s.dtype, action=s.action,
                      sources=list(s.sources), layers=list(s.layers), shards=s.shards)
                 for s in self.steps]
        dropped = [dict(name=d.name, reason=d.reason) for d in self.dropped]
        return {"strategy": strategy, "steps": steps, "dropped": dropped}

    @classmethod
    def from_dict(cls, data):
        """Inverse of `to_dict`."""
        strategy = data.get("strategy")
        if strategy is not None:
            strategy = Strategy(strategy["kind"], strategy.get("layer"),
                                float(strategy.get("tolerance", 0.0)))
        steps = tuple(
            Step(s["name"], tuple(int(d) for d in s["shape"]), s["dtype"], s["action"],
                 tuple(s["sources"]), tuple(int(l) for l in s.get("layers", ())),
                 int(s.get("shards", 1)))
            for s in data["steps"])
        dropped = tuple(Drop(d["name"], d["reason"]) for d in data.get("dropped", ()))
        return cls(steps, dropped, strategy)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def summary(self):
        """One line: how many tensors out, by action, and how many inputs dropped."""
        count = {action: 0 for action in (COPY, RENAME, MERGE, DUPLICATE)}
        for step in self.steps:
            count[step.action] = count.get(step.action, 0) + 1
        out = f"{len(self.steps)} tensors out: {count[COPY]} copied, {count[RENAME]} renamed, "
        if self.strategy is None or count[DUPLICATE]:
            shared = len({s.sources for s in self.steps if s.action == DUPLICATE})
            out += f"{count[DUPLICATE]} duplicated from {shared} shared tensors"
        else:
            merged_from = sum(len(s.sources) for s in self.steps if s.action == MERGE)
            strategy = str(self.strategy)
            if self.strategy.kind == "strict":
                strategy += f" (tolerance {self.strategy.tolerance:g})"
            out += f"{count[MERGE]} merged from {merged_from} layer tensors by {strategy}"
        return out + f"; {len(self.dropped)} dropped"

    def format_table(self):
        """Human-readable table: action, output name, shape, dtype, sources; drops; summary."""
        rows = []
        for step in self.steps:
            if step.action == COPY and step.sources == (step.name,):
                sources = ""
            elif step.action == MERGE:
                sources = "layers {}: {}".format(",".join(map(str, step.layers)),
                                                 ", ".join(step.sources))
            else:
                sources = ", ".join(step.sources)
            if step.shards > 1:
                sources += f" (concat {step.shards} shards each)"
            rows.append((step.action, step.name, format_shape(step.shape), step.dtype, sources))
        lines = format_columns(rows) if rows else []
        if self.dropped:
            width = max(len(d.name) for d in self.dropped)
            lines.extend(f"drop  {d.name.ljust(width)}  {d.reason}" for d in self.dropped)
        lines.append(self.summary())
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class LayerGroup:
    """Tensors that differ only in a layer index: `name` is the layer-0 output name, `members`
    are (layer, TensorSpec) in layer order, with the input name (a sharded tensor: its first
    shard's name and the concatenated shape)."""

    name: str
    members: Tuple[Tuple[int, TensorSpec], ...]


def plan_migration(specs, strategy="first", group_patterns=(), renames=(), excludes=(),
                   drop_optimizer_state=False, tolerance=0.0):
    """Plans a migration of `specs` (iterable of TensorSpec) to today's names and one shared layer.

    `group_patterns`: regexes with one capture group for the layer index (e.g. `word_(\\d+)`),
    besides the built-in `Cell{i}` / `cell_{i}`; `renames`: (old_regex, new) pairs over whole
    path components; `excludes`: regexes whose matches are copied untouched.
    Raises PlanError naming the tensor and shapes when a group cannot be shared.

    `strategy`: text for Strategy.parse or a Strategy; `tolerance` is recorded for `strict`.
    `drop_optimizer_state`: optimizer slots (`<var>/Adam`, ... of OPTIMIZER_SLOT_NAMES, not
    moving averages) and scalar `*_power` globals become Drops, excluded ones too.
    A name holding several layer indices is grouped by the last one a group pattern matches,
    else by its last `cell_{i}`.
    """
    if isinstance(strategy, Strategy):
        if tolerance:
            strategy = dataclasses.replace(strategy, tolerance=float(tolerance))
    else:
        strategy = Strategy.parse(strategy, tolerance)
    specs = _normalize_specs(specs)
    rules = _Rules(group_patterns, renames, excludes)

    dropped, kept = [], []
    for spec in specs:
        reason = _optimizer_state(spec) if drop_optimizer_state else None
        if reason:
            dropped.append(Drop(spec.name, reason))
        else:
            kept.append(spec)
    tensors = _migrated_tensors(kept, rules)
    groups, singles = _group(tensors, rules)

    steps = {}
    for tensor in singles:
        action = COPY if tensor.sources == (tensor.name,) else RENAME
        _add_step(steps, Step(tensor.name, tensor.shape, tensor.dtype, action, tensor.sources,
                              (), tensor.shards))
    for name in sorted(groups):
        members = groups[name]
        _add_step(steps, _merge_step(name, members, strategy))
    return Plan(tuple(steps[name] for name in sorted(steps)),
                tuple(sorted(dropped, key=lambda d: d.name)), strategy)


def find_layer_groups(specs, group_patterns=(), renames=(), excludes=()):
    """Layer groups (>= 2 layers) of `specs` after renaming, as LayerGroup, sorted by name."""
    rules = _Rules(group_patterns, renames, excludes)
    groups, _ = _group(_migrated_tensors(_normalize_specs(specs), rules), rules)
    return [
        LayerGroup(name, tuple((layer, TensorSpec(t.sources[0], t.shape, t.dtype))
                               for layer, t in members))
        for name, members in sorted(groups.items())]


def migrated_name(name, renames=()):
    """Today's name of input `name` (user `renames` first); a shard: its whole tensor's name."""
    return _migrate(name, _Rules((), renames, ()))[0]


def plan_unshare(specs, layers, group_patterns=()):
    """Plans the inverse: every `cell_0` tensor of a shared checkpoint copied to `cell_0..layers-1`.

    `group_patterns` as in plan_migration: a component whose captured index is 0 is unshared too.
    """
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise PlanError(f"layers must be an integer >= 1, got {layers!r}")
    rules = _Rules(group_patterns, (), ())
    steps, unshared = {}, 0
    for spec in _normalize_specs(specs):
        index = _layer_index(spec.name.split("/"), rules.group_patterns)
        if index is not None and index.layer != 0:
            raise PlanError(
                f"{spec.name} has layer {index.layer}: the checkpoint is already per-layer; "
                f"unshare reads a shared checkpoint, which holds only layer 0")
        _add_step(steps, Step(spec.name, spec.shape, spec.dtype, COPY, (spec.name,)))
        if index is None:
            continue
        unshared += 1
        for layer in range(1, layers):
            comps = spec.name.split("/")
            comps[index.position] = index.component(layer)
            _add_step(steps, Step("/".join(comps), spec.shape, spec.dtype, DUPLICATE,
                                  (spec.name,)))
    if not unshared:
        raise PlanError(
            f"no tensor has a layer-0 scope ({names.layer_scope(0)} or a --group pattern), so "
            f"there is nothing to unshare; if the names are older than TF 1.2 (Cell0, "
            f"cell_0/gru_cell/gates/weights), migrate the checkpoint first")
    return Plan(tuple(steps[name] for name in sorted(steps)), (), None)


# ---------------------------------------------------------------------------- internals


@dataclasses.dataclass(frozen=True)
class _Tensor:
    """One logical input tensor under its migrated `name` (several `sources` when sharded)."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    sources: Tuple[str, ...]
    shards: int = 1
    excluded: bool = False


@dataclasses.dataclass(frozen=True)
class _LayerIndex:
    position: int        # which path component holds the layer index
    layer: int
    component: object    # layer -> that component with the index replaced


class _Rules:
    """Compiled user options."""

    def __init__(self, group_patterns, renames, excludes):
        self.group_patterns = []
        for pattern in _as_list(group_patterns):
            regex = _compile(pattern, "group pattern")
            if regex.groups != 1:
                raise PlanError(f"group pattern {pattern!r} has {regex.groups} capture groups; "
                                f"it needs exactly one, around the layer index, e.g. 'word_(\\d+)'")
            self.group_patterns.append(regex)
        if isinstance(renames, dict):
            renames = renames.items()
        self.renames = []
        for pair in _as_list(renames):
            try:
                old, new = pair
            except (TypeError, ValueError):
                raise PlanError(f"rename {pair!r} is not an (old_regex, new) pair") from None
            self.renames.append(compile_rename(old, new))
        self.excludes = [_compile(pattern, "exclude") for pattern in _as_list(excludes)]

    def excluded(self, name):
        return any(regex.search(name) for regex in self.excludes)


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (str, re.Pattern)):
        return [value]
    return list(value)


def _compile(pattern, what):
    return compile_pattern(pattern, what)  # matched with a time limit


def _normalize_specs(specs):
    out, seen = [], set()
    for spec in specs:
        if not isinstance(spec, TensorSpec):
            spec = TensorSpec(*spec)
        spec = TensorSpec(str(spec.name), tuple(int(d) for d in spec.shape), str(spec.dtype))
        if spec.name in seen:
            raise PlanError(f"tensor {spec.name} is listed twice in the input")
        seen.add(spec.name)
        out.append(spec)
    return out


def format_shape(shape):
    """`[3, 4]` for shape (3, 4); shared by every table and message that shows a shape."""
    return "[" + ", ".join(map(str, shape)) + "]"


def format_columns(rows):
    """Rows of cells -> text lines with every column left-aligned to its widest cell."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def _variable_length(comps):
    """Number of leading components naming the variable (trailing slot/EMA names removed)."""
    n = len(comps)
    while n > 1 and any(r.fullmatch(comps[n - 1]) for r in (_SLOT_RE, _MOVING_AVERAGE_RE)):
        n -= 1
    return n


def _optimizer_state(spec):
    """Why `spec` is optimizer state (slot or optimizer global), or None."""
    comps = spec.name.split("/")
    last = comps[-1]
    if len(comps) > 1 and _SLOT_RE.fullmatch(last):
        return f"optimizer slot {last!r} of {'/'.join(comps[:-1])} (drop_optimizer_state)"
    if _OPTIMIZER_GLOBAL_RE.fullmatch(last) and spec.shape == ():
        return f"optimizer global {last!r} (drop_optimizer_state)"
    return None


def _cell_rules():
    """Today's cell scope -> [(component regexes, today's suffix, sharded)], longest first."""
    rules = {}
    for scope, table in names.LEGACY_CELL_VARIABLES.items():
        entries = []
        for old, new in table.items():
            comps = [re.compile(r"(\d+)".join(re.escape(p) for p in c.split("{}")))
                     for c in old.split("/")]
            entries.append((comps, new.split("/"), "{}" in old))
        entries.sort(key=lambda entry: -len(entry[0]))
        rules[scope] = entries
    return rules


_CELL_RULES = _cell_rules()
_CELL_SCOPES = dict(names.LEGACY_CELL_SCOPES, **{s: s for s in names.CELL_VARIABLES})


def _migrate(name, rules):
    """Input name -> (today's name, shard index or None): user renames, then the built-in ones."""
    comps = name.split("/")
    if rules.renames:
        renamed = []
        for comp in comps:
            for regex, new in rules.renames:
                match = regex.fullmatch(comp)
                if match:
                    comp = match.expand(new)
                    break
            renamed.extend(part for part in comp.split("/") if part)
        if not renamed:
            raise PlanError(f"the renames leave nothing of the name {name}; check --rename")
        comps = renamed
    comps = _rename_scopes(comps)
    return _rename_cell_variable(comps)


def _rename_scopes(comps):
    out = list(comps)
    for i in range(_variable_length(comps) - 1):  # never the variable's own leaf name
        comp, parent = comps[i], comps[i - 1] if i else None
        if comp == names.LEGACY_RNN_SCOPE:
            out[i] = names.RNN_SCOPE
        elif comp == names.LEGACY_BIDIRECTIONAL_SCOPE:
            out[i] = names.BIDIRECTIONAL_SCOPE
        elif comp == names.LEGACY_MULTI_RNN_CELL_SCOPE:
            out[i] = names.MULTI_RNN_CELL_SCOPE
        elif parent == names.LEGACY_BIDIRECTIONAL_SCOPE and comp in names.LEGACY_DIRECTION_SCOPES:
            out[i] = names.LEGACY_DIRECTION_SCOPES[comp]
        elif parent == names.LEGACY_MULTI_RNN_CELL_SCOPE and _LEGACY_LAYER_RE.fullmatch(comp):
            out[i] = names.layer_scope(int(_LEGACY_LAYER_RE.fullmatch(comp).group(1)))
    return out


def _rename_cell_variable(comps):
    """Renames the first cell scope followed by one of its legacy variable paths."""
    for i in range(len(comps) - 1):
        scope = _CELL_SCOPES.get(comps[i])
        if scope is None:
            continue
        for patterns, new, sharded in _CELL_RULES[scope]:
            segment = comps[i + 1:i + 1 + len(patterns)]
            if len(segment) < len(patterns):
                continue
            matches = [p.fullmatch(c) for p, c in zip(patterns, segment)]
            if all(matches):
                shard = int(matches[-1].group(1)) if sharded else None
                rest = comps[i + 1 + len(patterns):]
                return "/".join(comps[:i] + [scope] + new + rest), shard
    return "/".join(comps), None


def _migrated_tensors(specs, rules):
    """Specs -> _Tensors under migrated names, shards assembled; PlanError on clashing shards."""
    tensors, sharded = [], {}
    for spec in specs:
        if rules.excluded(spec.name):
            tensors.append(_Tensor(spec.name, spec.shape, spec.dtype, (spec.name,), excluded=True))
            continue
        name, shard = _migrate(spec.name, rules)
        if shard is None:
            tensors.append(_Tensor(name, spec.shape, spec.dtype, (spec.name,)))
            continue
        parts = sharded.setdefault(name, {})
        if shard in parts:
            raise PlanError(f"{parts[shard].name} and {spec.name} would both be shard {shard} of "
                            f"{name}; leave one out with --exclude")
        parts[shard] = spec
    for name, parts in sharded.items():
        tensors.append(_concatenated(name, parts))
    return tensors


def _concatenated(name, parts):
    order = sorted(parts)
    shards = [parts[k] for k in order]
    listing = ", ".join(f"{s.name} {format_shape(s.shape)} {s.dtype}" for s in shards)
    if order != list(range(len(order))):
        missing = sorted(set(range(order[-1] + 1)) - set(order))
        raise PlanError(f"shard {missing[0]} of {name} is missing (have {listing}); "
                        f"check the checkpoint is complete or leave it out with --exclude")
    first = shards[0]
    if any(not s.shape or s.dtype != first.dtype or s.shape[1:] != first.shape[1:]
           for s in shards):
        raise PlanError(f"the shards of {name} cannot be concatenated on axis 0 ({listing}); "
                        f"leave them out with --exclude")
    shape = (sum(s.shape[0] for s in shards),) + first.shape[1:]
    return _Tensor(name, shape, first.dtype, tuple(s.name for s in shards), len(shards))


def _layer_index(comps, group_patterns):
    """The component holding the layer index, or None: the last one a group pattern matches,
    else the last `cell_{i}` scope."""
    found = builtin = None
    for i, comp in enumerate(comps):
        # A layer scope holds a variable: it is never the variable's own (last) name.
        match = _LAYER_RE.fullmatch(comp) if i < _variable_length(comps) - 1 else None
        if match:
            builtin = _LayerIndex(i, int(match.group(1)), names.layer_scope)
        for regex in group_patterns:
            match = regex.fullmatch(comp)
            if not match:
                continue
            digits = match.group(1)
            if digits is None or not digits.isdigit():
                raise PlanError(f"group pattern {regex.pattern!r} captured {digits!r} in "
                                f"{comp!r} of {'/'.join(comps)}; its group must capture the "
                                f"layer index digits")
            start, end = match.span(1)
            found = _LayerIndex(i, int(digits),
                                lambda k, c=comp, s=start, e=end: f"{c[:s]}{k}{c[e:]}")
    return found or builtin


def _group(tensors, rules):
    """-> ({layer-0 name: [(layer, _Tensor)] with >= 2 layers, layer order}, ungrouped tensors)."""
    by_name, singles = {}, []
    for tensor in tensors:
        comps = tensor.name.split("/")
        index = None if tensor.excluded else _layer_index(comps, rules.group_patterns)
        if index is None:
            singles.append(tensor)
            continue
        comps[index.position] = index.component(0)
        members = by_name.setdefault("/".join(comps), {})
        if index.layer in members:
            raise PlanError(f"{members[index.layer].sources[0]} and {tensor.sources[0]} would "
                            f"both be layer {index.layer} of {'/'.join(comps)}; rename one with "
                            f"--rename or leave one out with --exclude")
        members[index.layer] = tensor
    groups = {}
    for name, members in by_name.items():
        if len(members) == 1:
            singles.extend(members.values())
        else:
            groups[name] = [(layer, members[layer]) for layer in sorted(members)]
    return groups, singles


def _add_step(steps, step):
    if step.name in steps:
        raise PlanError(f"{steps[step.name].sources[0]} and {step.sources[0]} would both be "
                        f"written as {step.name}; rename one with --rename or leave one out "
                        f"with --exclude")
    steps[step.name] = step


def _stack_regex(members):
    """An --exclude regex matching the input names of a group's stack."""
    names_ = [t.sources[0].split("/") for _, t in members]
    common = 0
    while all(len(c) > common + 1 and c[common] == names_[0][common] for c in names_):
        common += 1
    head = "".join(re.escape(c) + "/" for c in names_[0][:common])
    differing = re.sub(r"\\?\d+", r"\\d+", re.escape(names_[0][common]))
    tail = "/" if common + 1 < len(names_[0]) else "$"
    return f"^{head}{differing}{tail}"


def _merge_step(name, members, strategy):
    layers = tuple(layer for layer, _ in members)
    tensors = [t for _, t in members]
    regex = _stack_regex(members)
    if len({t.shards for t in tensors}) > 1:
        counts = ", ".join(f"layer {l}: {t.shards}" for l, t in members)
        raise PlanError(f"the layers of {name} have different shard counts ({counts}); "
                        f"copy that stack per layer with --exclude '{regex}'")
    if strategy.kind == "layer":
        chosen = dict(members).get(strategy.layer)
        if chosen is None:
            raise PlanError(f"strategy layer:{strategy.layer} needs layer {strategy.layer} but "
                            f"{name} has layers {', '.join(map(str, layers))}; choose K among them "
                            f"or copy that stack per layer with --exclude '{regex}'")
        shape, dtype = chosen.shape, chosen.dtype
    else:
        kinds = {}
        for layer, t in members:
            kinds.setdefault((t.shape, t.dtype), []).append(layer)
        if len(kinds) > 1:
            described = "; ".join(
                f"layer{'s' if len(ls) > 1 else ''} {', '.join(map(str, ls))}: "
                f"{format_shape(shape)} {dtype}" for (shape, dtype), ls in kinds.items())
            (best_shape, best_dtype), best = max(kinds.items(), key=lambda kv: len(kv[1]))
            agree = (f"K in {', '.join(map(str, best))} (those layers agree on "
                     f"{format_shape(best_shape)} {best_dtype})" if len(best) > 1
                     else f"K one of {', '.join(map(str, layers))}")
            raise PlanError(f"cannot share {name} across layers by {strategy}: {described}; "
                            f"use --strategy layer:K with {agree}, or copy that stack per layer "
                            f"with --exclude '{regex}'")
        shape, dtype = tensors[0].shape, tensors[0].dtype
        if strategy.kind == "mean" and dtype not in FLOAT_DTYPES:
            raise PlanError(f"strategy mean cannot average the {dtype} tensors of {name}; use "
                            f"--strategy first or layer:K, or --exclude '{regex}'")
    sources = tuple(source for t in tensors for source in t.sources)
    return Step(name, shape, dtype, MERGE, sources, layers, tensors[0].shards)
