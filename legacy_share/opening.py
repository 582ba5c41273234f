"""One way in: a checkpoint opened for planning, as every command and API function sees it.

`open_for_planning` is the only place a checkpoint path (and the old graph's `.meta`) becomes
something a planner reads: inspect, migrate (and its dry run), verify, unshare, export's plan,
`restore_shared` and the tf-slim `init_fn` all start here. The checks of hostile input live in
`reading.open_checkpoint` (the index) and `metagraph.read_meta_graph` (the graph); the naming
rules (generations, user renames, seq2seq) in the pure planner that reads `specs`; what is
decided here is how the cuDNN models among the tensors are found and shown.
"""

import contextlib

from legacy_share import cudnn_models
from legacy_share import errors
from legacy_share.reading import open_checkpoint

__all__ = ["Opened", "open_for_planning", "read_old_graph", "naming_errors"]


class Opened:
    """A checkpoint opened for planning.

    Attributes:
      checkpoint: the reading.Checkpoint as stored (`prefix`, `specs`, `files`, `read`).
      prefix: its prefix.
      graph: the old graph's MetaGraphDef (parsed, never run), or None without `meta`.
      graph_notes: plan notes on the graph's block-cell settings (cell clip, forget bias, ...).
      meta: the `.meta` path given, or None.
    """

    def __init__(self, checkpoint, meta, graph, graph_notes, cudnn, cudnn_buffer):
        self.checkpoint = checkpoint
        self.prefix = checkpoint.prefix
        self.meta = meta
        self.graph = graph
        self.graph_notes = tuple(graph_notes)
        self._cudnn = cudnn
        self._cudnn_buffer = cudnn_buffer
        self._found = None

    def cudnn_models(self):
        """The cuDNN models among the tensors -> (models, LayoutUnknownError or None).

        A buffer whose layout neither its canonical tensors, the graph nor the flags tell is
        not an error here (inspect lists it as a note); a layout that does not fit is.
        Raises:
          PlanError (naming the checkpoint, `file` set): a buffer or its tensors do not fit.
        """
        if self._found is None:
            meta_layouts = (cudnn_models.layouts_from_meta(self.graph)
                            if self.graph is not None else ())
            try:
                with naming_errors(self.prefix):
                    models = cudnn_models.find_models(
                        self.checkpoint.specs, meta_layouts, self._cudnn, self._cudnn_buffer,
                        prefix=self.prefix)
                self._found = (tuple(models), None)
            except errors.LayoutUnknownError as exc:
                self._found = ((), exc)
        return self._found

    def checked_cudnn_models(self):
        """The cuDNN models, their canonical tensors checked against their buffers when the
        data files are there; LayoutUnknownError when a layout cannot be told."""
        models, unknown = self.cudnn_models()
        if unknown is not None:
            raise unknown
        if models and not self.checkpoint.missing_files():
            cudnn_models.check_canonical(self.checkpoint, models)
        return models

    def planning_reader(self):
        """What the migration planner reads -> (reader, plan notes).

        The reader is the Checkpoint, or a view of it in which cuDNN buffers read as TF1 cell
        tensors (cudnn_models.CudnnCheckpoint, buffers checked against their canonical tensors
        when the data files are there); the notes say what the view assumed, then the graph's.
        """
        models, unknown = self.cudnn_models()
        if unknown is not None:
            raise unknown
        with naming_errors(self.prefix):  # a cuDNN GRU: no TF1 cell to migrate to
            reader, notes = cudnn_models.view_of(self.checkpoint, models)
        return reader, tuple(notes) + self.graph_notes


def open_for_planning(src, meta=None, cudnn=None, cudnn_buffer=None):
    """Opens checkpoint `src` (and the old graph `meta`) for planning.

    Args:
      src: a checkpoint prefix, folder (with a `checkpoint` state file), V1 file, `.index`
        or `.data-*` path; only ever read.
      meta: the old graph's `.meta`, or None; parsed, never run.
      cudnn: a cudnn.Layout for a buffer whose layout the checkpoint cannot tell, or None;
        cudnn_buffer: that buffer's name when it does not give itself away, or None.
    Returns:
      An Opened. cuDNN models are looked for only when asked (`cudnn_models`, ...).
    Raises:
      CheckpointError: the checkpoint or the `.meta` cannot be found, read or trusted.
    """
    checkpoint = open_checkpoint(src)
    graph, notes = read_old_graph(meta)
    return Opened(checkpoint, meta, graph, notes, cudnn, cudnn_buffer)


def read_old_graph(meta):
    """The old graph's MetaGraphDef (parsed, never run) and the plan notes it gives.

    Args:
      meta: the `.meta` path, or None.
    Returns:
      (MetaGraphDef, notes on its block-cell ops' settings), or (None, ()) without `meta`.
    Raises:
      CheckpointError: the file cannot be read or parsed (metagraph.read_meta_graph).
    """
    if meta is None:
        return None, ()
    # pylint: disable=import-outside-toplevel
    from legacy_share.graph_settings import block_cell_notes
    from legacy_share.metagraph import read_meta_graph
    graph = read_meta_graph(meta)
    return graph, tuple(block_cell_notes(graph, meta))


@contextlib.contextmanager
def naming_errors(prefix):
    """Prefixes a PlanError from the pure planner with the checkpoint it was planning for.

    The error keeps its class and `tensor`, gets `file` = `prefix`; one already naming the
    checkpoint only gets `file`.
    """
    try:
        yield
    except errors.PlanError as exc:
        if str(exc).startswith(f"{prefix}:"):
            if getattr(exc, "file", None) is None:
                exc.file = prefix
            raise
        raise type(exc)(f"{prefix}: {exc}", tensor=exc.tensor, file=prefix) from exc
