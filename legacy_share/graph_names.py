"""The variables TensorFlow itself creates for a `stack_graphs.StackGraph`: {name: shape}.

Graph construction only (no session, nothing run), one throwaway `tf.Graph` per stack, today's
`tf.compat.v1` cells (legacy_share's shared cells for the layers a shared route merges). The
cells need a process serving the legacy Keras; a process serving Keras 3 (the exporter on
TensorFlow >= 2.16) builds in ONE child process per call instead (JSON in and out, bounded
time), so that tf_keras and Keras 3 never meet in one process.

    python -m legacy_share.graph_names < graphs.json > names.json   # the child
"""

import contextlib
import dataclasses
import json
import logging
import subprocess
import sys
import warnings

from legacy_share import _process
from legacy_share import cell_kinds
from legacy_share import names
from legacy_share import renaming
from legacy_share import stack_graphs
from legacy_share.errors import NameCheckError, first_line
from legacy_share.plans import StackCheck

__all__ = ["check_plan", "check_stacks", "created_names", "build", "CHILD_TIMEOUT"]

CHILD_TIMEOUT = 300  # seconds; a child importing TensorFlow on a busy machine takes ~10
_CACHE = {}


def check_plan(plan, source_names, rules=None, layers=None):
    """`plan` with every RNN stack's names checked against TensorFlow (`plan.stacks` filled).

    Args:
      plan: a migrate plan (`share_from` says which layers it merges) or an unshare plan
        (`layers` given: the output's layer count, every layer its own).
      source_names: the input checkpoint's names; rules: the grouping.Rules it was planned with.
    Returns:
      The Plan, with a StackCheck per stack: "exact", or by rule and why.
    Raises:
      NameCheckError: a stack's planned names or shapes are not those TensorFlow creates in
        the graph that restores it (the first difference named), or it cannot be checked.
    """
    steps = {}
    for step in plan.steps:
        if renaming.variable_length(step.name.split("/")) == len(step.name.split("/")):
            for source in step.sources:
                steps.setdefault(source, []).append(step)
    share_from = None if layers is not None else plan.share_from
    checks = []
    for stack in stack_graphs.stacks_of(source_names, rules):
        chosen = {s.name: s for src in stack.sources for s in steps.get(src, ())}
        planned = {name: step.shape for name, step in chosen.items()}
        checks.append((stack, planned, {n: s.sources[0] for n, s in chosen.items()}))
    verdicts = check_stacks(checks, share_from, layers)
    return dataclasses.replace(plan, stacks=tuple(verdicts))


def check_stacks(checks, share_from=None, layers=None):
    """[StackCheck] of (stack_graphs.Stack, planned {name: shape}, {name: source}) triples.

    Raises:
      NameCheckError: as `check_plan`; its `tensor` is the input the first difference comes from.
    """
    todo, verdicts = [], []
    for stack, planned, sources in checks:
        label = _label(planned) or stack.raw_base
        if stack.by_rule:
            verdicts.append(StackCheck(label, stack_graphs.BY_RULE, stack.by_rule))
            continue
        graph = stack_graphs.graph_of(stack, planned, share_from, layers)
        todo.append((len(verdicts), graph, planned, sources))
        if graph.share_from is not None and len(stack.layers) <= max(stack.layers):
            # A shared route hides a missing layer: the per-layer graph names it.
            whole = dataclasses.replace(graph, share_from=None)
            stored = {n: s for n, s in created_names([whole])[0].items()
                      if _layer_of(n) in stack.layers}
            todo.append((len(verdicts), whole, stored, sources))
        verdicts.append(StackCheck(label, stack_graphs.EXACT, stack_graphs.describe(graph)))
    built = created_names(graph for _, graph, _, _ in todo)
    for (index, graph, planned, sources), created in zip(todo, built):
        lacks = stack_graphs.compare(graph, created, planned, sources.get)
        if lacks:
            verdicts[index] = StackCheck(verdicts[index].scope, stack_graphs.INCOMPLETE, lacks)
    return verdicts


def _layer_of(name):
    comps = name.split("/")
    for i in range(1, len(comps)):
        if comps[i - 1] == names.MULTI_RNN_CELL_SCOPE and comps[i].startswith("cell_"):
            return int(comps[i][len("cell_"):])
    return None


def _label(planned):
    """The components every planned name of a stack shares (e.g. `model/rnn/multi_rnn_cell`)."""
    if not planned:
        return ""
    split = [n.split("/")[:-1] for n in planned]
    common = []
    for parts in zip(*split):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return "/".join(common)


def created_names(graphs):
    """[{name: shape}] of the variables TensorFlow creates for each StackGraph of `graphs`.

    Raises:
      NameCheckError: the graph cannot be built (the message says why), or the child
        process failed or timed out.
    """
    graphs = list(graphs)
    todo = [g for g in dict.fromkeys(graphs) if g not in _CACHE]
    if todo:
        built = _build_here(todo) if _process.keras_in_use() == 2 else _build_in_child(todo)
        _CACHE.update(zip(todo, built))
    return [_CACHE[g] for g in graphs]


def _build_here(graphs):
    return [build(g) for g in graphs]


def build(graph):
    """{variable name: shape tuple} TensorFlow creates building `graph` in a fresh tf.Graph."""
    from legacy_share._tf import legacy_rnn_cell, tf, tf1  # pylint: disable=import-outside-toplevel
    cells = legacy_rnn_cell()
    with tf.Graph().as_default() as g, _quiet():
        inputs = tf1.placeholder(tf.float32, [1, 1, graph.input_depth])
        try:
            scoped = graph.call == stack_graphs.BIDIRECTIONAL_SCOPED  # the call's own scope=
            with _scope(tf1, "" if scoped else graph.scope):
                if graph.call == stack_graphs.DYNAMIC_RNN:
                    tf1.nn.dynamic_rnn(_cell(cells, graph), inputs, dtype=tf.float32)
                elif graph.call == stack_graphs.BIDIRECTIONAL:
                    tf1.nn.bidirectional_dynamic_rnn(_cell(cells, graph), _cell(cells, graph),
                                                     inputs, dtype=tf.float32)
                elif graph.call == stack_graphs.BIDIRECTIONAL_SCOPED:
                    tf1.nn.bidirectional_dynamic_rnn(_cell(cells, graph), _cell(cells, graph),
                                                     inputs, dtype=tf.float32, scope=graph.scope)
                elif graph.call == stack_graphs.BIDIRECTIONAL_SHARED:
                    cell = _cell(cells, graph)
                    tf1.nn.bidirectional_dynamic_rnn(cell, cell, inputs, dtype=tf.float32)
                else:
                    cell = _cell(cells, graph)
                    cell(inputs[:, 0], cell.zero_state(1, tf.float32))
        except (ValueError, TypeError) as exc:
            raise NameCheckError(f"TensorFlow cannot build {stack_graphs.describe(graph)}: "
                                 f"{first_line(exc)}") from exc
        return {v.op.name: tuple(v.shape.as_list())
                for v in g.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)}


@contextlib.contextmanager
def _quiet():
    """The cells' deprecation warnings and TensorFlow's INFO/WARNING logs held back."""
    log = logging.getLogger("tensorflow")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _scope(tf1, scope):
    return tf1.variable_scope(scope) if scope else contextlib.nullcontext()


def _cell(cells, graph):
    kind = cell_kinds.by_scope(graph.cell)

    def make(shared):
        cls = kind.shared_cell_class() if shared else getattr(cells, kind.tf1_class)
        if graph.cell == names.LSTM_SCOPE:
            return cls(graph.units, use_peepholes=graph.peepholes, num_proj=graph.num_proj)
        return cls(graph.units)

    if graph.layers is None:
        return make(False)
    share_from = graph.layers if graph.share_from is None else graph.share_from
    shared = make(True) if share_from < graph.layers else None
    return cells.MultiRNNCell([make(False) if k < share_from else shared
                               for k in range(graph.layers)])


def _build_in_child(graphs):
    try:
        done = _process.run_with_legacy_keras(
            __name__, json.dumps([g.to_dict() for g in graphs]), CHILD_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NameCheckError(f"cannot check the names against TensorFlow: the child process "
                             f"that builds the graphs failed ({first_line(exc)})") from exc
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise NameCheckError(f"cannot check the names against TensorFlow: the child process "
                             f"that builds the graphs failed ({why})")
    if "error" in answer:
        raise NameCheckError(answer["error"])
    return [{name: tuple(shape) for name, shape in created.items()}
            for created in answer["created"]]


def _main():
    _process.quiet_tensorflow()
    graphs = [stack_graphs.StackGraph.from_dict(d) for d in json.load(sys.stdin)]
    try:
        created = [{n: list(s) for n, s in build(g).items()} for g in graphs]
        answer = {"created": created}
    except NameCheckError as exc:
        answer = {"error": str(exc)}
    sys.stdout.write("\n" + json.dumps(answer) + "\n")


if __name__ == "__main__":
    _main()
