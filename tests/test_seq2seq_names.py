"""legacy_seq2seq's names in every generation: golden lists, the migrator's mapping, refusals.

Golden names written out from TensorFlow's own sources (read, not copied):
- today (TF 1.2 - 1.15): contrib/legacy_seq2seq/python/ops/seq2seq.py (r1.2 - r1.15: the
  variable scopes `embedding_rnn_seq2seq`, `rnn` (static_rnn), `embedding_rnn_decoder`,
  `rnn_decoder`, `embedding_tied_rnn_seq2seq`, `combined_tied_rnn_seq2seq`, `tied_rnn_seq2seq`,
  `embedding_attention_seq2seq`, `embedding_attention_decoder`, `attention_decoder` with
  `AttnW_%d`, `AttnV_%d`, `Attention_%d`, `AttnOutputProjection` and `linear` in the scope
  itself); contrib/rnn/python/ops/core_rnn_cell.py (EmbeddingWrapper, OutputProjectionWrapper
  are RNNCell layers: `call` runs inside the layer scope `embedding_wrapper` /
  `output_projection_wrapper`, so the wrapped cell is named below it; `_linear` / `_Linear`
  create `kernel` and `bias` in the current scope, no sub-scope);
- TF 0.x: python/ops/seq2seq.py and python/ops/rnn_cell.py (r0.x: `rnn` opens `RNN`; the
  wrappers open their class name around their own variables only and call the cell beside
  it; `linear` opens `Linear` with `Matrix` and `Bias`; `MultiRNNCell/Cell%d`, `GRUCell/Gates`);
- TF 1.0 - 1.1: contrib/rnn/python/ops/core_rnn_cell_impl.py (r1.1: `_checked_scope(self,
  "embedding_wrapper")` / `"output_projection_wrapper"` around the wrapper's own variables,
  `return self._cell(...)` outside it; `_linear` makes `weights` / `biases` in the current
  scope).
`feed_previous` (bool or Tensor) changes no name: its `loop_function` scope only looks up the
existing embedding, and the Tensor form re-enters the same scopes with reuse.

No TF 2 class builds these graphs, so these lists are checked against the sources; today's
lists are also checked against the graph TF's layer scoping builds for the rebuilt functions
(tests/test_seq2seq_graphs.py), which is as close to the real graph as TF 2 allows.
"""

import re

import numpy as np
import pytest

from legacy_share import seq2seq
from legacy_share.errors import PlanError
from legacy_share.planning import plan_migration

E, V, D, U = 20, 30, 8, 6  # encoder symbols, decoder symbols, embedding width, num_units

# Each row: (TF 0.x name, TF 1.0 - 1.1 name, TF 1.2 - 1.15 name, shape).


def _rows(old0, old1, today, pieces):
    """Rows for one cell: `pieces` are (TF 0.x leaf, TF 1.0 leaf, today's leaf, shape)."""
    return [(old0 + a, old1 + b, today + c, shape) for a, b, c, shape in pieces]


def _gru(depth):
    return [("GRUCell/Gates/Linear/Matrix", "gru_cell/gates/weights", "gru_cell/gates/kernel",
             (depth + U, 2 * U)),
            ("GRUCell/Gates/Linear/Bias", "gru_cell/gates/biases", "gru_cell/gates/bias", (2 * U,)),
            ("GRUCell/Candidate/Linear/Matrix", "gru_cell/candidate/weights",
             "gru_cell/candidate/kernel", (depth + U, U)),
            ("GRUCell/Candidate/Linear/Bias", "gru_cell/candidate/biases",
             "gru_cell/candidate/bias", (U,))]


def _basic_lstm(depth):
    return [("BasicLSTMCell/Linear/Matrix", "basic_lstm_cell/weights", "basic_lstm_cell/kernel",
             (depth + U, 4 * U)),
            ("BasicLSTMCell/Linear/Bias", "basic_lstm_cell/biases", "basic_lstm_cell/bias",
             (4 * U,))]


def _two_layers(old0, old1, today, cell):
    """MultiRNNCell([cell(U), cell(U)]) fed `D`-wide embeddings, below the given scopes."""
    return (_rows(old0 + "MultiRNNCell/Cell0/", old1 + "multi_rnn_cell/cell_0/",
                  today + "multi_rnn_cell/cell_0/", cell(D))
            + _rows(old0 + "MultiRNNCell/Cell1/", old1 + "multi_rnn_cell/cell_1/",
                    today + "multi_rnn_cell/cell_1/", cell(U)))


def _projection_wrapper(old0, old1, today, outputs, classes):
    return [(old0 + "OutputProjectionWrapper/Linear/Matrix",
             old1 + "output_projection_wrapper/weights",
             today + "output_projection_wrapper/kernel", (outputs, classes)),
            (old0 + "OutputProjectionWrapper/Linear/Bias",
             old1 + "output_projection_wrapper/biases",
             today + "output_projection_wrapper/bias", (classes,))]


# embedding_rnn_seq2seq(cell=MultiRNNCell([BasicLSTMCell(U)] * 2), E, V, D).
ERS = "embedding_rnn_seq2seq/"
ERS_DEC = ERS + "embedding_rnn_decoder/"
ERS_ENCODER = (
    [(ERS + "RNN/EmbeddingWrapper/embedding", ERS + "rnn/embedding_wrapper/embedding",
      ERS + "rnn/embedding_wrapper/embedding", (E, D))]
    + _two_layers(ERS + "RNN/", ERS + "rnn/", ERS + "rnn/embedding_wrapper/", _basic_lstm)
    + [(ERS_DEC + "embedding",) * 3 + ((V, D),)])
EMBEDDING_RNN_SEQ2SEQ = ERS_ENCODER + (
    _two_layers(ERS_DEC + "rnn_decoder/", ERS_DEC + "rnn_decoder/",
                ERS_DEC + "rnn_decoder/output_projection_wrapper/", _basic_lstm)
    + _projection_wrapper(ERS_DEC + "rnn_decoder/", ERS_DEC + "rnn_decoder/",
                          ERS_DEC + "rnn_decoder/", U, V))
# ... with output_projection=(W, B): the decoder cell is not wrapped (W, B are the user's own).
EMBEDDING_RNN_SEQ2SEQ_PROJECTED = ERS_ENCODER + _two_layers(
    ERS_DEC + "rnn_decoder/", ERS_DEC + "rnn_decoder/", ERS_DEC + "rnn_decoder/", _basic_lstm)

# embedding_tied_rnn_seq2seq(cell=GRUCell(U), num_symbols=V, D): one cell for both sides.
ETS = "embedding_tied_rnn_seq2seq/"
TIED = ETS + "combined_tied_rnn_seq2seq/tied_rnn_seq2seq/"
EMBEDDING_TIED_RNN_SEQ2SEQ = (
    [(ETS + "embedding",) * 3 + ((V, D),)]
    + _rows(TIED, TIED, TIED + "output_projection_wrapper/", _gru(D))
    + _projection_wrapper(TIED, TIED, TIED, U, V))
EMBEDDING_TIED_RNN_SEQ2SEQ_PROJECTED = (
    [(ETS + "embedding",) * 3 + ((V, D),)] + _rows(TIED, TIED, TIED, _gru(D)))

# embedding_attention_seq2seq(cell=MultiRNNCell([GRUCell(U)] * 2), E, V, D, num_heads=1):
# attention over the encoder outputs (U wide); the query is the flattened state (2 * U).
EAS = "embedding_attention_seq2seq/"
ATT = EAS + "embedding_attention_decoder/attention_decoder/"


def _attention(cell_output, output_size):
    return [
        (ATT + "AttnW_0",) * 3 + ((1, 1, U, U),),
        (ATT + "AttnV_0",) * 3 + ((U,),),
        (ATT + "Linear/Matrix", ATT + "weights", ATT + "kernel", (D + U, D)),
        (ATT + "Linear/Bias", ATT + "biases", ATT + "bias", (D,)),
        (ATT + "Attention_0/Linear/Matrix", ATT + "Attention_0/weights",
         ATT + "Attention_0/kernel", (2 * U, U)),
        (ATT + "Attention_0/Linear/Bias", ATT + "Attention_0/biases", ATT + "Attention_0/bias",
         (U,)),
        (ATT + "AttnOutputProjection/Linear/Matrix", ATT + "AttnOutputProjection/weights",
         ATT + "AttnOutputProjection/kernel", (cell_output + U, output_size)),
        (ATT + "AttnOutputProjection/Linear/Bias", ATT + "AttnOutputProjection/biases",
         ATT + "AttnOutputProjection/bias", (output_size,)),
    ]


EAS_ENCODER = (
    [(EAS + "RNN/EmbeddingWrapper/embedding", EAS + "rnn/embedding_wrapper/embedding",
      EAS + "rnn/embedding_wrapper/embedding", (E, D))]
    + _two_layers(EAS + "RNN/", EAS + "rnn/", EAS + "rnn/embedding_wrapper/", _gru)
    + [(EAS + "embedding_attention_decoder/embedding",) * 3 + ((V, D),)])
EMBEDDING_ATTENTION_SEQ2SEQ = EAS_ENCODER + (
    _two_layers(ATT, ATT, ATT + "output_projection_wrapper/", _gru)
    + _projection_wrapper(ATT, ATT, ATT, U, V) + _attention(V, V))
EMBEDDING_ATTENTION_SEQ2SEQ_PROJECTED = EAS_ENCODER + (
    _two_layers(ATT, ATT, ATT, _gru) + _attention(U, U))

CASES = {
    "embedding_rnn_seq2seq": EMBEDDING_RNN_SEQ2SEQ,
    "embedding_rnn_seq2seq-output_projection": EMBEDDING_RNN_SEQ2SEQ_PROJECTED,
    "embedding_tied_rnn_seq2seq": EMBEDDING_TIED_RNN_SEQ2SEQ,
    "embedding_tied_rnn_seq2seq-output_projection": EMBEDDING_TIED_RNN_SEQ2SEQ_PROJECTED,
    "embedding_attention_seq2seq": EMBEDDING_ATTENTION_SEQ2SEQ,
    "embedding_attention_seq2seq-output_projection": EMBEDDING_ATTENTION_SEQ2SEQ_PROJECTED,
}
GENERATIONS = {"tf0": 0, "tf1.0": 1}

# The examples, as real TF >= 1.2 checkpoints hold them.
REAL_TODAY = [
    "embedding_attention_seq2seq/rnn/embedding_wrapper/embedding",
    "embedding_attention_seq2seq/rnn/embedding_wrapper/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
    "embedding_rnn_seq2seq/embedding_rnn_decoder/rnn_decoder/output_projection_wrapper/"
    "multi_rnn_cell/cell_0/basic_lstm_cell/kernel",
    "embedding_rnn_seq2seq/embedding_rnn_decoder/rnn_decoder/output_projection_wrapper/kernel",
    "embedding_rnn_seq2seq/embedding_rnn_decoder/rnn_decoder/output_projection_wrapper/bias",
    "embedding_attention_seq2seq/embedding_attention_decoder/attention_decoder/Attention_0/bias",
]


def old_specs(rows, generation, slot=None):
    column = GENERATIONS[generation]
    suffix = f"/{slot}" if slot else ""
    return [(row[column] + suffix, row[3], "float32") for row in rows]


def planned(specs, **options):
    plan = plan_migration(specs, share=False, **options)
    return {step.name: (step.shape, step.sources) for step in plan.steps}


def test_golden_lists_hold_the_real_checkpoints_names_and_no_duplicates():
    today = {row[2] for rows in CASES.values() for row in rows}
    assert set(REAL_TODAY) <= today
    for rows in CASES.values():
        for column in range(3):
            assert len({row[column] for row in rows}) == len(rows)


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("case", CASES)
def test_each_old_list_maps_exactly_onto_todays_list(case, generation):
    rows = CASES[case]
    got = planned(old_specs(rows, generation))
    column = GENERATIONS[generation]
    assert got == {row[2]: (row[3], (row[column],)) for row in rows}


@pytest.mark.parametrize("case", CASES)
def test_todays_list_is_left_as_it_is(case):
    rows = CASES[case]
    got = planned([(row[2], row[3], "float32") for row in rows])
    assert got == {row[2]: (row[3], (row[2],)) for row in rows}


@pytest.mark.parametrize("slot", ["Adam", "Adam_1", "ExponentialMovingAverage"])
@pytest.mark.parametrize("generation", GENERATIONS)
def test_slots_follow_their_variable_into_the_wrapper(generation, slot):
    rows = EMBEDDING_ATTENTION_SEQ2SEQ
    got = planned(old_specs(rows, generation) + old_specs(rows, generation, slot))
    assert {name for name in got if name.endswith("/" + slot)} == {
        f"{row[2]}/{slot}" for row in rows}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_encoder_cell_goes_into_the_embedding_wrapper_and_decoder_cell_into_the_projection(
        generation):
    got = planned(old_specs(EMBEDDING_RNN_SEQ2SEQ + EMBEDDING_ATTENTION_SEQ2SEQ, generation))
    cells = [name for name in got if "/cell_" in name]
    encoder = [name for name in cells if "/rnn/" in name]
    decoder = [name for name in cells if "_decoder/" in name]
    assert len(encoder) + len(decoder) == len(cells) == 24
    assert all("/rnn/embedding_wrapper/multi_rnn_cell/" in name for name in encoder)
    assert all("_decoder/output_projection_wrapper/multi_rnn_cell/" in name for name in decoder)


def test_a_user_scope_above_the_model_is_kept():
    rows = EMBEDDING_ATTENTION_SEQ2SEQ
    got = planned([("model/" + name, shape, dtype) for name, shape, dtype in
                   old_specs(rows, "tf0")])
    assert set(got) == {"model/" + row[2] for row in rows}


def test_user_renames_come_before_the_wrapper_rule():
    rows = EMBEDDING_RNN_SEQ2SEQ
    specs = [(name.replace("embedding_rnn_seq2seq", "s2s"), shape, dtype)
             for name, shape, dtype in old_specs(rows, "tf0")]
    got = planned(specs, renames=[("s2s", "embedding_rnn_seq2seq")])
    assert set(got) == {row[2] for row in rows}


def test_an_excluded_wrapper_variable_moves_nothing():
    rows = EMBEDDING_RNN_SEQ2SEQ
    got = planned(old_specs(rows, "tf0"), excludes=[r"EmbeddingWrapper/embedding$"])
    assert ERS + "RNN/EmbeddingWrapper/embedding" in got
    assert ERS + "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel" in got


# InputProjectionWrapper(GRUCell(U), num_proj=P) under dynamic_rnn / static_rnn: the same move
# (r0.x rnn_cell.py and r1.1 core_rnn_cell_impl.py call the cell after leaving the wrapper's
# scope; r1.2 - r1.15 core_rnn_cell.py call it inside the layer).
P = 5
INPUT_PROJECTION = [
    ("RNN/InputProjectionWrapper/Linear/Matrix", "rnn/input_projection_wrapper/weights",
     "rnn/input_projection_wrapper/kernel", (D, P)),
    ("RNN/InputProjectionWrapper/Linear/Bias", "rnn/input_projection_wrapper/biases",
     "rnn/input_projection_wrapper/bias", (P,)),
] + _rows("RNN/", "rnn/", "rnn/input_projection_wrapper/", [
    (a, b, c, (P + shape[0] - D, *shape[1:]) if len(shape) == 2 else shape)
    for a, b, c, shape in _gru(D)])


@pytest.mark.parametrize("generation", GENERATIONS)
def test_input_projection_wrapper_takes_its_cell_in(generation):
    got = planned(old_specs(INPUT_PROJECTION, generation))
    column = GENERATIONS[generation]
    assert got == {row[2]: (row[3], (row[column],)) for row in INPUT_PROJECTION}


@pytest.mark.parametrize("old, today", [
    ("BiRNN/FW/", "bidirectional_rnn/fw/"), ("BiRNN/BW/", "bidirectional_rnn/bw/"),
    ("bidirectional_rnn/fw/", "bidirectional_rnn/fw/")])
def test_each_direction_of_a_bidirectional_rnn_takes_its_cell_in(old, today):
    generation = "tf0" if old.startswith("BiRNN") else "tf1.0"
    rows = [(old + a[4:], old + b[4:], today + c[4:], shape)
            for a, b, c, shape in INPUT_PROJECTION]
    got = planned(old_specs(rows, generation))
    assert set(got) == {row[2] for row in rows}
    assert today + "input_projection_wrapper/gru_cell/gates/kernel" in got


# ------------------------------------------------------------------------ refusals


def one_line_refusal(specs, match):
    with pytest.raises(PlanError, match=match) as caught:
        plan_migration(specs, share=False)
    message = str(caught.value)
    assert "\n" not in message and caught.value.tensor in message
    assert caught.value.tensor in {name for name, _, _ in specs}
    return caught.value


GRU0 = "MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix"


def test_two_wrappers_beside_one_cell_are_refused():
    specs = [("rnn_decoder/EmbeddingWrapper/embedding", (V, D), "float32"),
             ("rnn_decoder/OutputProjectionWrapper/Linear/Matrix", (U, V), "float32"),
             ("rnn_decoder/" + GRU0, (D + U, 2 * U), "float32")]
    error = one_line_refusal(specs, "which wraps which")
    assert error.tensor == "rnn_decoder/" + GRU0


def test_a_wrapper_beside_a_cell_in_a_users_scope_is_refused():
    specs = [("my_decoder/OutputProjectionWrapper/Linear/Matrix", (U, V), "float32"),
             ("my_decoder/" + GRU0, (D + U, 2 * U), "float32")]
    one_line_refusal(specs, "not the scope of an RNN or a legacy_seq2seq decoder")


def test_a_wrapper_and_a_cell_of_different_generations_are_refused():
    specs = [("s/rnn/embedding_wrapper/embedding", (E, D), "float32"),
             ("s/rnn/" + GRU0, (D + U, 2 * U), "float32")]
    error = one_line_refusal(specs, "TF 0.x cell beside the TF 1.0 wrapper embedding_wrapper")
    assert error.tensor == "s/rnn/" + GRU0


def test_todays_cell_beside_a_legacy_wrapper_is_refused():
    specs = [("s/RNN/EmbeddingWrapper/embedding", (E, D), "float32"),
             ("s/RNN/gru_cell/gates/kernel", (D + U, 2 * U), "float32")]
    one_line_refusal(specs, "a TF >= 1.2 cell beside the TF 0.x wrapper")


def test_two_cells_beside_one_wrapper_are_refused():
    specs = [("RNN/EmbeddingWrapper/embedding", (E, D), "float32"),
             ("RNN/GRUCell/Gates/Linear/Matrix", (D + U, 2 * U), "float32"),
             ("RNN/BasicLSTMCell/Linear/Matrix", (D + U, 4 * U), "float32")]
    one_line_refusal(specs, "holds the cells BasicLSTMCell and GRUCell beside EmbeddingWrapper")


def test_todays_cell_beside_todays_embedding_wrapper_is_another_rnns_and_stays():
    names = ["rnn/embedding_wrapper/embedding", "rnn/embedding_wrapper/gru_cell/gates/kernel",
             "rnn/lstm_cell/kernel", "rnn/lstm_cell/w_f_diag", "rnn/lstm_cell/kernel/Adam"]
    got = planned([(name, (4, 4), "float32") for name in names])
    assert got == {name: ((4, 4), (name,)) for name in names}


def test_a_tf1_lstm_with_peepholes_moves_into_its_wrapper():
    old = ["s/rnn/embedding_wrapper/embedding", "s/rnn/lstm_cell/weights", "s/rnn/lstm_cell/biases",
           "s/rnn/lstm_cell/w_f_diag"]
    got = planned([(name, (4, 4), "float32") for name in old])
    assert set(got) == {"s/rnn/embedding_wrapper/embedding", "s/rnn/embedding_wrapper/lstm_cell/"
                        "kernel", "s/rnn/embedding_wrapper/lstm_cell/bias",
                        "s/rnn/embedding_wrapper/lstm_cell/w_f_diag"}


def test_a_block_cell_beside_a_wrapper_is_refused():
    specs = [("s/rnn/output_projection_wrapper/weights", (U, V), "float32"),
             ("s/rnn/GRUBlockCell/w_ru", (D + U, 2 * U), "float32")]
    one_line_refusal(specs, "names do not say its TF version")


def test_an_unknown_variable_beside_a_wrapped_cell_is_refused():
    specs = old_specs(EMBEDDING_ATTENTION_SEQ2SEQ, "tf0") + [
        (ATT + "MyGate/Matrix", (U, U), "float32")]
    error = one_line_refusal(specs, "neither the cell nor OutputProjectionWrapper's own")
    assert error.tensor == ATT + "MyGate/Matrix"


def test_the_refusal_names_the_input_tensor_before_user_renames():
    specs = [("dec/OutputProjectionWrapper/Linear/Matrix", (U, V), "float32"),
             ("dec/" + GRU0, (D + U, 2 * U), "float32")]
    with pytest.raises(PlanError) as caught:
        plan_migration(specs, share=False, renames=[("dec", "my_decoder")])
    assert caught.value.tensor == "dec/" + GRU0
    assert str(caught.value).startswith("cannot tell where TF >= 1.2 puts dec/" + GRU0 + ": ")


def test_a_hostile_deep_name_is_looked_at_in_linear_time():
    import time
    deep = "/".join(["x"] * 20000)
    names = [deep + "/RNN/EmbeddingWrapper/embedding", deep + "/RNN/" + GRU0]
    start = time.perf_counter()
    wrapped = seq2seq.wrapped_cells(names)
    moved = wrapped.relocate(names[1].split("/"))
    assert time.perf_counter() - start < 3  # 23 s when prefixes were tuples built per depth
    assert moved[20000:20003] == ["RNN", "EmbeddingWrapper", "MultiRNNCell"]


# ----------------------------------------------------------------- the planner's hook


@pytest.mark.parametrize("case", CASES)
def test_every_seq2seq_name_is_marked_as_named_by_rule(case):
    assert {seq2seq.names_by_rule(row[2]) for row in CASES[case]} == {seq2seq.NO_GRAPH}


@pytest.mark.parametrize("generation", ["tf0", "today"])
def test_the_plan_notes_each_seq2seq_model_as_named_by_rule(generation):
    rows = EMBEDDING_RNN_SEQ2SEQ + EMBEDDING_ATTENTION_SEQ2SEQ
    column = {"tf0": 0, "today": 2}[generation]
    specs = [("model/" + row[column], row[3], "float32") for row in rows] + [
        ("model/rnn/gru_cell/gates/kernel", (D + U, 2 * U), "float32")]
    notes = plan_migration(specs, share=False).notes
    assert [note.split(":")[0] for note in notes if seq2seq.NO_GRAPH in note] == [
        "model/embedding_attention_seq2seq", "model/embedding_rnn_seq2seq"]
    assert plan_migration(specs[-1:], share=False).notes == ()


@pytest.mark.parametrize("name", ["rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel",
                                  "model/rnn/lstm_cell/kernel", "embedding", "global_step",
                                  "decoder/rnn_decoder_like/gru_cell/gates/kernel"])
def test_other_names_are_not_marked(name):
    assert seq2seq.names_by_rule(name) is None


# ------------------------------------------------- real checkpoints, end to end


@pytest.mark.parametrize("write_version", ["V1", "V2"])
@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("case", ["embedding_rnn_seq2seq", "embedding_attention_seq2seq",
                                  "embedding_tied_rnn_seq2seq"])
def test_a_saved_checkpoint_migrates_bit_for_bit_and_restores_strictly(tmp_path, case,
                                                                       generation, write_version):
    from legacy_share.testing import tf, tf1
    from legacy_share.migration import migrate
    from tests.file_guard import save_variables, snapshot

    rows = CASES[case]
    column = GENERATIONS[generation]
    rng = np.random.default_rng(7)
    values = {row[column]: rng.standard_normal(row[3]).astype(np.float32) for row in rows}
    src = save_variables(str(tmp_path / "old"), values, write_version=write_version)
    before = snapshot(str(tmp_path / "old"))
    dst = str(tmp_path / "new" / "model.ckpt")
    migrate(src, dst, share=False)
    assert snapshot(str(tmp_path / "old")) == before

    with tf1.Graph().as_default():
        variables = {row[2]: tf1.get_variable(row[2], shape=row[3], dtype=tf.float32)
                     for row in rows}
        saver = tf1.train.Saver(variables)  # strict: every variable must be in the output
        with tf1.Session() as session:
            saver.restore(session, dst)
            got = session.run(variables)
    reader = tf.train.load_checkpoint(dst)
    assert set(reader.get_variable_to_shape_map()) == {row[2] for row in rows}
    for row in rows:
        assert got[row[2]].dtype == np.float32
        assert got[row[2]].tobytes() == values[row[column]].tobytes()


# ------------------------------------------------------------------ the command line


def test_cli_refuses_an_untied_wrapper_in_one_line_and_writes_nothing(tmp_path, capsys):
    from tests.file_guard import error_line, run_main, save_variables, snapshot
    rng = np.random.default_rng(3)
    values = {"my_decoder/OutputProjectionWrapper/Linear/Matrix": rng.random((U, V), "float32"),
              "my_decoder/" + GRU0: rng.random((D + U, 2 * U), "float32")}
    src = save_variables(str(tmp_path / "old"), values, write_version="V1")
    before = snapshot(str(tmp_path))
    code, _, err = run_main(capsys, "migrate", src, str(tmp_path / "new" / "m.ckpt"), "--no-share")
    line = error_line(err)
    assert code == 1 and src in line and "my_decoder/" + GRU0 in line
    assert "not the scope of an RNN or a legacy_seq2seq decoder" in line
    assert snapshot(str(tmp_path)) == before


def test_cli_dry_run_lists_todays_seq2seq_names(tmp_path, capsys):
    from tests.file_guard import run_main, save_variables
    rows = EMBEDDING_ATTENTION_SEQ2SEQ
    values = {row[0]: np.zeros(row[3], np.float32) for row in rows}
    src = save_variables(str(tmp_path / "old"), values, write_version="V1")
    code, out, _ = run_main(capsys, "migrate", src, str(tmp_path / "m.ckpt"), "--dry-run",
                            "--no-share", "--json")
    assert code == 0
    assert {row[2] for row in rows} <= set(re.findall(r'"(embedding_attention_seq2seq/[^"]+)"',
                                                      out))
