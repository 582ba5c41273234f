"""The one exception tree: every error says which file and tensor it is about, output problems
are OutputError (not CheckpointError, which is about an input), and a wrong argument to a public
function is the tree's ArgumentError, never a bare ValueError / TypeError / AttributeError."""

import os

import numpy as np
import pytest

from legacy_share.testing import tf1  # first: pytest's process serves tf_keras  # noqa: F401
from tests.file_guard import save_variables

import legacy_share  # noqa: E402  pylint: disable=wrong-import-order
import legacy_share.keras  # noqa: E402  pylint: disable=wrong-import-order
from legacy_share import errors  # noqa: E402  pylint: disable=wrong-import-order

ERRORS = [getattr(errors, name) for name in errors.__all__
          if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name),
                                                                     errors.Error)]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_every_error_carries_its_file_and_tensor(error):
    exc = error("m", tensor="rnn/gru_cell/gates/kernel", file="old/model.ckpt")
    assert (str(exc), exc.tensor, exc.file) == ("m", "rnn/gru_cell/gates/kernel",
                                                "old/model.ckpt")
    assert (error("m").tensor, error("m").file) == (None, None)


def test_output_errors_are_not_input_errors():
    assert not issubclass(errors.OutputError, errors.CheckpointError)
    assert issubclass(errors.DestinationExistsError, errors.OutputError)
    assert issubclass(errors.ArgumentError, ValueError) and \
        issubclass(errors.ArgumentError, TypeError)


@pytest.fixture(scope="module", name="src")
def _src(tmp_path_factory):
    scope = "rnn/multi_rnn_cell/cell_0/gru_cell"
    return save_variables(str(tmp_path_factory.mktemp("gru")), {
        f"{scope}/gates/kernel": np.ones([5, 4], "f4"), f"{scope}/gates/bias": np.ones([4], "f4"),
        f"{scope}/candidate/kernel": np.ones([5, 2], "f4"),
        f"{scope}/candidate/bias": np.ones([2], "f4")})


def _keras(call, arguments, **kwargs):
    return lambda src, out: getattr(legacy_share.keras, call)(*arguments(src, out), **kwargs)


CALLS = {  # name: (call(src, out), the error class, a text of its message)
    "inspect None": (lambda src, out: legacy_share.inspect_checkpoint(None),
                     errors.ArgumentError, "checkpoint must be a path"),
    "migrate to None": (lambda src, out: legacy_share.migrate(src, None),
                        errors.ArgumentError, "output must be a path"),
    "migrate to a folder": (lambda src, out: legacy_share.migrate(src, os.path.dirname(out)),
                            errors.OutputError, "is a folder"),
    "migrate over its input": (lambda src, out: legacy_share.migrate(src, src, force=True),
                               errors.OutputError, "is the input checkpoint"),
    "verify against None": (lambda src, out: legacy_share.verify_checkpoint(src, None),
                            errors.ArgumentError, "MetaGraphDef must be a path"),
    "group_patterns 5": (lambda src, out: legacy_share.plan_checkpoint(src, group_patterns=5),
                         errors.PlanError, "group_patterns must be a regex"),
    "renames 'ab'": (lambda src, out: legacy_share.plan_checkpoint(src, renames="ab"),
                     errors.PlanError, "rename 'ab' is not an (old_regex, new) pair"),
    "cudnn 'lstm'": (lambda src, out: legacy_share.plan_checkpoint(src, cudnn="lstm"),
                     errors.ArgumentError, "cudnn must be a legacy_share.cudnn.Layout"),
    "restore into None": (lambda src, out: legacy_share.restore_shared(None, src),
                          errors.ArgumentError, "Session to restore into"),
    "slim var_list {}": (lambda src, out: legacy_share.assign_from_legacy_checkpoint_fn(src, {}),
                         errors.ArgumentError, "var_list is a dict"),
    "slim var_list []": (lambda src, out: legacy_share.assign_from_legacy_checkpoint_fn(src, []),
                         errors.ArgumentError, "var_list is empty"),
    "keras plan None": (_keras("plan", lambda src, out: (None,)),
                        errors.ArgumentError, "checkpoint must be a path"),
    "keras layers '2'": (_keras("plan", lambda src, out: (src,), layers="2"),
                         errors.ArgumentError, "layers must be an integer >= 1"),
    "keras stack 3": (_keras("plan", lambda src, out: (src,), stack=3),
                      errors.ArgumentError, "stack must be a scope"),
    "keras dense 3": (_keras("plan", lambda src, out: (src,), dense=3),
                      errors.ArgumentError, "dense must be"),
    "keras custom_cells 'yes'": (_keras("plan", lambda src, out: (src,), custom_cells="yes"),
                                 errors.ArgumentError, "custom_cells must be True or False"),
    "keras cudnn 'gru'": (_keras("plan", lambda src, out: (src,), cudnn="gru"),
                          errors.ArgumentError, "cudnn must be a legacy_share.cudnn.Layout"),
    "keras build keras=4": (_keras("build_model", lambda src, out: (src,), keras=4),
                            errors.ArgumentError, "keras must be 3 (Keras 3) or 2"),
    "keras export to None": (_keras("export", lambda src, out: (src, None), keras=2),
                             errors.ArgumentError, "output must be a path"),
    "keras export to *.h5": (_keras("export", lambda src, out: (src, out + ".h5"), keras=2),
                             errors.OutputError, "unknown output format"),
    "keras tolerance 'x'": (_keras("export", lambda src, out: (src, out + ".keras"), keras=2,
                                   tolerance="x"),
                            errors.ArgumentError, "tolerance must be a finite number"),
}


@pytest.mark.parametrize("case", sorted(CALLS))
def test_a_wrong_argument_to_the_api_is_an_error_of_the_tree(src, tmp_path, case):
    call, error, text = CALLS[case]
    out = str(tmp_path / "out" / "model")
    os.makedirs(os.path.dirname(out))
    with pytest.raises(errors.Error) as info:
        call(src, out)
    assert type(info.value) is error, info.value  # pylint: disable=unidiomatic-typecheck
    assert text in str(info.value)
    assert os.listdir(os.path.dirname(out)) == []
