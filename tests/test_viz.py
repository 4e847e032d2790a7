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


def test_marked_word_colours_each_character_by_its_mark():
    import matplotlib.pyplot as plt

    from ocrsr_lib.viz import RIGHT_COLOUR, WRONG_COLOUR, marked_word

    figure, axis = plt.subplots()
    texts = marked_word(axis, "cat", [True, False, True])
    assert [t.get_text() for t in texts] == ["c", "a", "t"]
    assert [t.get_color() for t in texts] == [RIGHT_COLOUR, WRONG_COLOUR, RIGHT_COLOUR]
    positions = [t.get_position()[0] for t in texts]
    assert positions == sorted(positions) and abs(sum(positions) / 3 - 0.5) < 1e-9
    (empty,) = marked_word(axis, "", [])
    assert empty.get_text() == "(nothing)" and empty.get_color() == WRONG_COLOUR
    with pytest.raises(ValueError, match="2 marks for the 3 characters"):
        marked_word(axis, "cat", [True, True])
    plt.close(figure)
