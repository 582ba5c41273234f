"""legacy_share.keras.weights: a TF1 cell's sizes from its variables' shapes (pure NumPy)."""

import pytest

from legacy_share.errors import ExportError
from legacy_share.keras.weights import BASIC_LSTM, GRU, cell_sizes

LSTM_OF_4_ON_3 = {"kernel": (3 + 4, 16), "bias": (16,)}
GRU_OF_4_ON_3 = {"gates/kernel": (7, 8), "gates/bias": (8,), "candidate/kernel": (7, 4),
                 "candidate/bias": (4,)}


@pytest.mark.parametrize("cell, shapes, sizes", [
    (BASIC_LSTM, LSTM_OF_4_ON_3, (3, 4, 4)), (GRU, GRU_OF_4_ON_3, (3, 4, 4))])
def test_sizes_come_from_the_kernel(cell, shapes, sizes):
    assert cell_sizes(cell, shapes) == sizes


def test_a_kernel_that_is_not_2d_is_refused():
    shapes = dict(LSTM_OF_4_ON_3, kernel=(7, 4, 4))
    with pytest.raises(ExportError, match=r"the cell/kernel has shape \[7, 4, 4\]; a cell "
                                          r"kernel is 2-D"):
        cell_sizes(BASIC_LSTM, shapes)


@pytest.mark.parametrize("cell, shapes", [
    (BASIC_LSTM, {"kernel": (4, 16), "bias": (16,)}),
    (GRU, {"gates/kernel": (4, 8), "gates/bias": (8,), "candidate/kernel": (4, 4),
           "candidate/bias": (4,)})])
def test_a_kernel_with_no_rows_for_an_input_is_refused(cell, shapes):
    """Kernel rows = input depth + units: a kernel of `units` rows leaves an input of depth 0."""
    with pytest.raises(ExportError, match=r"input depth 0, 4 units\); the checkpoint does not "
                                          r"hold a complete"):
        cell_sizes(cell, shapes)
