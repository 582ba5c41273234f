"""The export's reading of each TF1 stack checked against the graph TensorFlow builds for it.

A stack the export plan calls exact (or custom) is rebuilt as today's TF1 graph with its cell,
units, input depth, layers and directions, in the scope its INPUT names give
(`legacy_share.stack_graphs`); the variables TensorFlow creates there must be the stack's
names and shapes as the plan reads them, else the stack is refused naming the first
difference. Stacks no TF 2 class rebuilds say "names by rule; no graph to check against".
"""

import dataclasses

from legacy_share import graph_names
from legacy_share import names
from legacy_share import stack_graphs
from legacy_share.errors import NameCheckError
from legacy_share.keras import stack_rules
from legacy_share.keras import structure

__all__ = ["check_export_names"]


def check_export_names(export_plan, specs, rules):
    """`export_plan` with each TF1 stack's status checked against TensorFlow.

    Args:
      export_plan: a structure.ExportPlan; specs: the checkpoint's TensorSpecs;
      rules: the grouping.Rules (--group, --rename, --exclude) it was planned with.
    Returns:
      The ExportPlan: a stack whose names differ is refused (reason: the first difference),
      one no graph rebuilds is "names by rule; no graph to check against".
    Raises:
      NameCheckError: the graphs could not be built (e.g. the child process failed).
    """
    shape_of = {s.name: tuple(s.shape) for s in specs}
    work = {}
    for stack in export_plan.stacks:
        if stack.cell in names.CELL_VARIABLES and stack.status != structure.REFUSED:
            work[stack.scope] = _checks(stack, shape_of, rules)
    graphs = []
    for checks in work.values():
        for source_stack, planned, _ in checks:
            if not source_stack.by_rule:
                try:
                    graphs.append(stack_graphs.graph_of(source_stack, planned))
                except NameCheckError:
                    pass  # refused below, by the same call
    graph_names.created_names(graphs)  # every graph of the run in one go (one child process)
    stacks = tuple(_verdict(s, work[s.scope]) if s.scope in work else s
                   for s in export_plan.stacks)
    checked = {id(old): s for s, old in zip(stacks, export_plan.stacks)}
    chosen = checked.get(id(export_plan.stack))
    after = tuple(checked[id(old)] for old in export_plan.after)
    return dataclasses.replace(export_plan, stacks=stacks, stack=chosen, after=after)


def _checks(stack, shape_of, rules):
    """[(stack_graphs.Stack, planned {name: shape}, {name: source})] of one export stack."""
    planned, sources = {}, {}
    for (direction, layer), variables in stack.sources.items():
        comps = [direction if c == "{fw,bw}" else
                 names.layer_scope(layer) if c == names.layer_scope("*") else c
                 for c in stack.scope.split("/")]
        for variable, srcs in variables.items():
            name = "/".join(comps + [variable])
            shapes = [shape_of[s] for s in srcs]
            planned[name] = (sum(s[0] for s in shapes),) + shapes[0][1:]
            sources[name] = srcs[0]
    found = stack_graphs.stacks_of(sorted(set(sources.values())), rules)
    return [(s, {n: planned[n] for n in planned if sources[n] in s.sources},
             {n: sources[n] for n in planned if sources[n] in s.sources}) for s in found]


def _verdict(stack, checks):
    by_rule = next((s.by_rule for s, _, _ in checks if s.by_rule), "")
    if stack.scope.endswith(stack_rules.NUMBERED):
        by_rule = ("cells called by hand in one scope, read in TensorFlow's numbering order; "
                   "no graph is rebuilt to check that reading")
    if by_rule:
        if stack.status == structure.EXACT:
            return dataclasses.replace(stack, status=stack_graphs.BY_RULE, reason=by_rule)
        return dataclasses.replace(stack, reason=f"{stack_graphs.BY_RULE}: {by_rule}")
    if len(checks) != 1:
        where = ", ".join(repr(s.raw_base) for s, _, _ in checks)
        return dataclasses.replace(stack, status=structure.REFUSED, reason=(
            f"its input names live in {len(checks)} scopes ({where}), which no one graph "
            f"creates"))
    try:
        verdict, = graph_names.check_stacks(checks)
    except NameCheckError as exc:
        return dataclasses.replace(stack, status=structure.REFUSED, reason=str(exc))
    if verdict.names == stack_graphs.EXACT:
        return stack
    return dataclasses.replace(stack, status=structure.REFUSED, reason=verdict.graph)
