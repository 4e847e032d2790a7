"""Plot helpers."""

import numpy as np
import pytest

from ocrsr_lib.viz import moving_average


def test_moving_average_of_a_long_and_of_a_short_run():
    steps, means = moving_average([1.0, 2.0, 3.0, 4.0, 5.0], window=2)
    assert steps.tolist() == [2, 3, 4, 5] and np.allclose(means, [1.5, 2.5, 3.5, 4.5])
    steps, means = moving_average([2.0, 4.0], window=25)  # a shortened run still plots
    assert steps.tolist() == [2] and means.tolist() == [3.0]
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], window=0)
