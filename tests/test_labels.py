"""Label normalisation and the recognizers' character sets."""

import pytest

from ocrsr_lib.data import CDISTNET_CHARSET, GUIDE_CHARSET, normalize_label


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Hello", "hello"),
        ("WORLD!", "world"),
        ("e-mail", "email"),
        ("24/7", "247"),
        ("çafé", "af"),
        ("  ", ""),
        ("Ab3-x_Y", "ab3xy"),
    ],
)
def test_normalize_label_keeps_lowercase_alphanumerics(raw, normalised):
    assert normalize_label(raw) == normalised


def test_guide_charset_is_the_official_37_symbol_alphabet():
    assert len(GUIDE_CHARSET) == 37
    assert "".join(GUIDE_CHARSET.symbols) == "-0123456789abcdefghijklmnopqrstuvwxyz"
    assert GUIDE_CHARSET.start_id == GUIDE_CHARSET.end_id == 0


def test_cdistnet_charset_has_40_symbols_with_specials_first():
    assert len(CDISTNET_CHARSET) == 40
    assert CDISTNET_CHARSET.symbols[:4] == ("<blank>", "<unk>", "<s>", "</s>")
    assert (CDISTNET_CHARSET.padding_id, CDISTNET_CHARSET.unknown_id) == (0, 1)
    assert (CDISTNET_CHARSET.start_id, CDISTNET_CHARSET.end_id) == (2, 3)
    assert CDISTNET_CHARSET.encode("a0") == [14, 4]


def test_encode_decode_round_trip_with_start_and_end():
    ids = CDISTNET_CHARSET.encode("Sale 50%!", add_start=True, add_end=True)
    assert ids[0] == 2 and ids[-1] == 3
    assert CDISTNET_CHARSET.decode(ids) == "sale50"
    assert GUIDE_CHARSET.decode(GUIDE_CHARSET.encode("Hi9", add_end=True) + [5, 6]) == "hi9"


def test_decode_stops_at_end_and_skips_padding():
    assert CDISTNET_CHARSET.decode([2, 14, 0, 15, 3, 16]) == "ab"


def test_odd_labels_are_handled_explicitly():
    assert CDISTNET_CHARSET.encode("!!!") == []
    with pytest.raises(ValueError, match="at most 3"):
        CDISTNET_CHARSET.encode("abcd", max_length=3)
    with pytest.raises(ValueError, match="outside"):
        CDISTNET_CHARSET.decode([40])
