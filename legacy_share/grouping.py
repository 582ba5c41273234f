"""Layer groups: a checkpoint's tensors under today's names, grouped by the layer index they hold.

Pure: names, shapes and dtypes in, groups out. A group is every tensor whose migrated names
differ only in one layer index (`cell_{i}`, or a user pattern such as `word_(\\d+)`); the
planner merges a group, keeps it per layer, or refuses it.
"""

import dataclasses
import re
from typing import Tuple

from legacy_share import generations
from legacy_share import names
from legacy_share import renaming
from legacy_share import seq2seq
from legacy_share.errors import PlanError
from legacy_share.patterns import compile_pattern, compile_rename
from legacy_share.plans import TensorSpec
from legacy_share.tables import format_shape

__all__ = ["LayerGroup", "find_layer_groups", "migrated_name"]

_LAYER_RE = renaming.LAYER_SCOPE_RE


@dataclasses.dataclass(frozen=True)
class LayerGroup:
    """Tensors that differ only in a layer index: `name` is the layer-0 output name, `members`
    are (layer, TensorSpec) in layer order, with the input name (a sharded tensor: its first
    shard's name and the concatenated shape)."""

    name: str
    members: Tuple[Tuple[int, TensorSpec], ...]


def find_layer_groups(specs, group_patterns=(), renames=(), excludes=()):
    """The layer groups of a checkpoint, as the planner sees them.

    Args:
      specs: iterable of TensorSpec (or (name, shape, dtype) tuples).
      group_patterns, renames, excludes: as in `planning.plan_migration`.

    Returns:
      LayerGroups with >= 2 layers, sorted by name.

    Raises:
      PlanError: an option is invalid or two inputs collide.
    """
    rules = Rules(group_patterns, renames, excludes)
    specs = normalize_specs(specs)
    if generations.object_based_evidence(s.name for s in specs) is not None:
        return []  # its keys are object-graph paths: no TF1 layer scopes
    groups, _ = group(migrated_tensors(specs, rules)[0], rules)
    return [
        LayerGroup(name, tuple((layer, TensorSpec(t.sources[0], t.shape, t.dtype))
                               for layer, t in g.members))
        for name, g in sorted(groups.items())]


def migrated_name(name, renames=(), context=()):
    """Today's name of input `name` (user `renames` first); a shard: its whole tensor's name.

    `context`: the other input names of its checkpoint, which decide with it the naming
    generation of its stack (generations.CheckpointNaming); alone, only its own names count.
    """
    rules = Rules((), renames, ())
    comps = user_renamed(name, rules)
    naming = generations.CheckpointNaming(
        ["/".join(comps)] + ["/".join(user_renamed(n, rules)) for n in context if n != name])
    return _migrate(comps, naming, None)[0]


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One logical input tensor under its migrated `name` (several `sources` when sharded)."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    sources: Tuple[str, ...]
    shards: int = 1
    excluded: bool = False


@dataclasses.dataclass(frozen=True)
class LayerIndex:
    """Where a name holds its layer index: component `position`, `layer`, and `component(k)`
    (that component with the index replaced by k)."""

    position: int
    layer: int
    component: object


@dataclasses.dataclass(frozen=True)
class Group:
    """A layer group of Tensors: `position` of the layer component, `members` (layer, Tensor)
    in order, and the group's name with layer `k`: `name_of(k)`."""

    position: int
    members: Tuple[Tuple[int, Tensor], ...]
    name_of: object


class Rules:
    """Compiled user options: group patterns, renames (old regex, new), excludes."""

    def __init__(self, group_patterns, renames, excludes):
        self.group_patterns = []
        for pattern in _as_list(group_patterns, "group_patterns"):
            regex = _compile(pattern, "group pattern")
            if regex.groups != 1:
                raise PlanError(f"group pattern {pattern!r} has {regex.groups} capture groups; "
                                f"it needs exactly one, around the layer index, e.g. 'word_(\\d+)'")
            self.group_patterns.append(regex)
        if isinstance(renames, dict):
            renames = renames.items()
        self.renames = []
        for pair in _as_list(renames, "renames"):
            try:
                if isinstance(pair, (str, bytes)):  # "ab" would unpack into ("a", "b")
                    raise TypeError(pair)
                old, new = pair
            except (TypeError, ValueError):
                raise PlanError(f"rename {pair!r} is not an (old_regex, new) pair") from None
            self.renames.append(compile_rename(old, new))
        self.excludes = [_compile(pattern, "exclude")
                         for pattern in _as_list(excludes, "excludes")]

    def excluded(self, name):
        """True when an --exclude regex matches input `name`."""
        return any(regex.search(name) for regex in self.excludes)


def _as_list(value, what):
    if value is None:
        return []
    if isinstance(value, (str, re.Pattern)):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise PlanError(f"{what} must be a regex or a list of them, got {value!r}") from None


def _compile(pattern, what):
    return compile_pattern(pattern, what)  # matched with a time limit


def normalize_specs(specs):
    """TensorSpecs with int shapes and str dtypes; PlanError on a name listed twice."""
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


def user_renamed(name, rules):
    """The components of input `name` after the user's --rename rules (before the built-in ones)."""
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
    return comps


def _migrate(comps, naming, gru_kernel):
    """User-renamed components -> (today's name, shard index or None), TF 0.x scope renames
    only where `naming` (a generations.CheckpointNaming) says the name is TF 0.x."""
    return renaming.migrate_name(comps, gru_kernel, naming.legacy_scopes(comps))


def migrated_tensors(specs, rules):
    """Specs -> (Tensors under migrated names, shards assembled; the generations.CheckpointNaming
    of the names, after the user's renames). PlanError on clashing shards."""
    tensors, sharded = [], {}
    kernel_roles = renaming.gru_block_kernels(
        {s.name: s.shape for s in specs if not rules.excluded(s.name)})
    renamed = {s.name: user_renamed(s.name, rules) for s in specs if not rules.excluded(s.name)}
    # A legacy_seq2seq cell moves into its wrapper's scope before its generation is decided,
    # so the wrapper (in the checkpoint's own spelling) is part of its stack's scope.
    wrapped = seq2seq.wrapped_cells({"/".join(c): name for name, c in renamed.items()})
    relocated = {name: wrapped.relocate(c) for name, c in renamed.items()}
    naming = generations.CheckpointNaming(["/".join(c) for c in relocated.values()])
    for spec in specs:
        if rules.excluded(spec.name):
            tensors.append(Tensor(spec.name, spec.shape, spec.dtype, (spec.name,), excluded=True))
            continue
        comps = spec.name.split("/")
        variable = "/".join(comps[:renaming.variable_length(comps)])
        name, shard = _migrate(relocated[spec.name], naming, kernel_roles.get(variable))
        if shard is None:
            tensors.append(Tensor(name, spec.shape, spec.dtype, (spec.name,)))
            continue
        parts = sharded.setdefault(name, {})
        if shard in parts:
            raise PlanError(f"{parts[shard].name} and {spec.name} would both be shard {shard} of "
                            f"{name}; leave one out with --exclude")
        parts[shard] = spec
    for name, parts in sharded.items():
        tensors.append(_concatenated(name, parts))
    return tensors, naming


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
    return Tensor(name, shape, first.dtype, tuple(s.name for s in shards), len(shards))


def layer_index(comps, group_patterns):
    """The component holding the layer index, as a LayerIndex, or None: the last one a group
    pattern matches, else the last `cell_{i}` scope."""
    found = builtin = None
    length = renaming.variable_length(comps)
    for i, comp in enumerate(comps):
        # A layer scope holds a variable: it is never the variable's own (last) name.
        match = _LAYER_RE.fullmatch(comp) if i < length - 1 else None
        if match:
            builtin = LayerIndex(i, int(match.group(1)), names.layer_scope)
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
            found = LayerIndex(i, int(digits),
                               lambda k, c=comp, s=start, e=end: f"{c[:s]}{k}{c[e:]}")
    return found or builtin


def group(tensors, rules):
    """Tensors -> ({layer-0 name: Group with >= 2 layers}, ungrouped Tensors)."""
    by_name, singles = {}, []
    for tensor in tensors:
        comps = tensor.name.split("/")
        index = None if tensor.excluded else layer_index(comps, rules.group_patterns)
        if index is None:
            singles.append(tensor)
            continue
        comps[index.position] = index.component(0)
        _, members = by_name.setdefault("/".join(comps), (index, {}))
        if index.layer in members:
            raise PlanError(f"{members[index.layer].sources[0]} and {tensor.sources[0]} would "
                            f"both be layer {index.layer} of {'/'.join(comps)}; rename one with "
                            f"--rename or leave one out with --exclude")
        members[index.layer] = tensor
    groups = {}
    for name, (index, members) in by_name.items():
        if len(members) == 1:
            singles.extend(members.values())
            continue

        def name_of(k, comps=name.split("/"), index=index):
            return "/".join(comps[:index.position] + [index.component(k)]
                            + comps[index.position + 1:])

        groups[name] = Group(index.position,
                             tuple((layer, members[layer]) for layer in sorted(members)), name_of)
    return groups, singles
