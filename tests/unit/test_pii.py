"""Tokens match the same person across spellings and feeds; masks hide what PIPL protects."""

import hashlib
import hmac
import re
from collections.abc import Sequence

import blake3
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kesu.transforms import pii

KEY = b"unit-test-key-0123456789"


def test_same_phone_written_differently_gets_one_token():
    phones = pii.normalize_phone(pl.Series(["138 1234 5678", "+8613812345678", "138-1234-5678"]))
    assert pii.tokens(phones, KEY, "phone").n_unique() == 1


def test_full_width_digits_and_any_separators_give_the_same_token():
    written = ["13833334444", "１３８３３３３４４４４", "138.3333.4444", "138 - 3333 - 4444",
               "1383333-4444", "+86 138 3333 4444", "（138）3333　4444", "138_3333_4444",
               "138/3333/4444", "138\u20103333\u20104444", "138・3333・4444"]  # fmt: skip
    phones = pii.normalize_phone(pl.Series(written))
    assert phones.to_list() == ["13833334444"] * len(written)
    assert pii.tokens(phones, KEY, "phone").n_unique() == 1
    ids = pii.normalize_id_number(pl.Series(["11010519491231002X", "110105 19491231 002x",
                                             "１１０１０５１９４９１２３１００２Ｘ",
                                             "110105_19491231_002X"]))  # fmt: skip
    assert ids.to_list() == ["11010519491231002X"] * 4


@pytest.mark.parametrize(
    "written",
    ["139、1234、5678", "139，1234，5678", "139——1234——5678", "139--1234--5678",
     "139~1234~5678", "139*1234*5678", "139(1234)5678", "139（1234）5678",
     "139\u20121234\u20155678", "139\u20241234\u20245678", "139\n1234\r\n5678"],
)  # fmt: skip
def test_a_phone_written_with_the_separators_chinese_users_type_gets_the_plain_token(written):
    # the separators the detector knows in text (`NUMBER_SEPARATORS`) are dropped in a phone
    # column too: a phone written with 、 is the plain number's token
    phones = pii.normalize_phone(pl.Series(["13912345678", written]))
    assert phones.to_list() == ["13912345678"] * 2
    assert pii.tokens(phones, KEY, "phone").n_unique() == 1
    ids = pii.normalize_id_number(pl.Series(["110105--19880808--0111", "110105\n198808080111"]))
    assert ids.to_list() == ["110105198808080111"] * 2


def test_invisible_characters_and_no_break_spaces_give_the_same_token():
    """Text copied from a web page: a no-break space, a zero-width space, a soft hyphen or a BOM
    inside a phone, an ID or a name made another token for the same person."""
    phones = pii.normalize_phone(
        pl.Series(["13833334444", "138\u00a03333\u00a04444", "138\u200b3333\u200b4444",
                   "\ufeff1383333\u00ad4444"])
    )  # fmt: skip
    assert phones.to_list() == ["13833334444"] * 4
    ids = pii.normalize_id_number(pl.Series(["11010519491231002X", "110105\u200c19491231002X"]))
    assert ids.to_list() == ["11010519491231002X"] * 2
    names = pii.normalize_name(pl.Series(["张三", "张\u200b三", "\u2060张\u00a0三"]))
    assert names.to_list() == ["张三"] * 3


def test_tokens_differ_across_keys_and_kinds_and_are_not_the_value():
    value = pl.Series(["13812345678"])
    a = pii.tokens(value, KEY, "phone")[0]
    assert a != pii.tokens(value, b"another-key-0123456789", "phone")[0]
    assert a != pii.tokens(value, KEY, "id_number")[0]
    assert "13812345678" not in a and len(a) == 32


def test_masks():
    assert pii.mask_phone(pl.Series(["13812345678"]))[0] == "138****5678"
    assert pii.mask_name(pl.Series(["欧阳娜娜"]))[0] == "欧*"  # length of the name hidden too
    assert pii.mask_id_number(pl.Series(["11010519491231002X"]))[0] == "1101**********002X"
    assert pii.mask_id_number(pl.Series([None], dtype=pl.String))[0] is None


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("13812345678", "138****5678"),  # a mobile
        ("+86 138 1234 5678", "138****5678"),  # the same, normalised first
        ("0592-5123456", "059****3456"),  # a landline with its area code
        ("0571-88886666", "057****6666"),
        ("62345678", "****78"),  # no area code: first 3 and last 4 would show 7 of 8 digits
        ("13912345606(孙八戒)", "****"),  # a name after the number
        ("010-62345678转孔廿六", "****"),  # an extension and a name after it
        ("吴天成", "****"),  # a name alone
        ("+85291234567", "****"),  # not a number of the masks' shapes
    ],
)
def test_a_phone_mask_shows_digits_of_a_well_formed_phone_only(written, masked):
    assert pii.mask_phone(pii.normalize_phone(pl.Series([written])))[0] == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("110105 19491231 002x", "1101**********002X"),  # a resident ID, normalised first
        ("110105194912310071 周九洲", "****"),  # a name after the number
        ("13912345608", "****"),  # a phone: region and last four would show 8 of its 11 digits
        ("E12345678", "****"),  # a passport number
    ],
)
def test_an_id_number_mask_shows_digits_of_a_resident_id_only(written, masked):
    assert pii.mask_id_number(pii.normalize_id_number(pl.Series([written])))[0] == masked


_WELL_FORMED = re.compile(r"[0-9]{11,12}")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet="0123456789", max_size=14),
            st.builds(lambda rest: "0" + rest, st.text(alphabet="0123456789", max_size=12)),
            st.text(alphabet="0123456789+*x孙八", max_size=14),
        ),
        max_size=20,
    )
)
def test_a_phone_mask_keeps_three_and_four_digits_of_a_phone_two_of_other_numbers_and_no_text(
    phones: list[str | None],
) -> None:
    def reference(p: str | None) -> str | None:
        if p is None:
            return None
        if _WELL_FORMED.fullmatch(p):  # as a mobile or a landline with its area code is written
            return p[:3] + "****" + p[-4:]
        return "****" + p[-2:] if p.isascii() and p.isdigit() else "****"

    masked = pii.mask_phone(pl.Series(phones, dtype=pl.String)).to_list()
    assert masked == [reference(p) for p in phones]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet="0123456789", min_size=10, max_size=12),
            st.text(alphabet="10 +-._e\t１٣", min_size=10, max_size=12),
            st.builds(lambda rest: "1" + rest, st.text(alphabet="0123456789 +._１", max_size=11)),
            st.builds(lambda rest: "0" + rest, st.text(alphabet="0123456789+._", max_size=12)),
            st.builds(lambda rest: "+" + rest, st.text(alphabet="0123456789", max_size=12)),
        ),
        max_size=30,
    )
)
def test_the_plain_mobile_check_is_its_regular_expression(values: list[str | None]) -> None:
    raw = pl.Series("p", values, dtype=pl.String)
    expected = raw.str.contains(pii._PLAIN_MOBILE)
    assert pii._plain_mobile(raw).to_list() == expected.to_list()
    # and the well-formed phone check is its own (false, not null, for null)
    well_formed = raw.str.contains(pii._WELL_FORMED_PHONE).fill_null(False)
    got = raw.to_frame().select(pii._well_formed_phone(pl.col("p"))).to_series()
    assert got.to_list() == well_formed.to_list()


def test_free_text_masks_ids_phones_and_the_rows_own_name():
    text = pl.Series(
        ["客户张三，电话138-1234-5678，身份证11010519491231002X，卡号6222021234567890123"]
    )
    masked = pii.mask_free_text(text, pl.Series(["张三"]))[0]
    for clear in ("张三", "1234-5678", "11010519491231002X", "6222021234567890123", "19491231"):
        assert clear not in masked
    assert masked.startswith("客户张*，电话138****5678")


def test_id_check_digit():
    # 11010519491231002X is the GB 11643 standard's worked example; changing a digit breaks it.
    ids = pl.Series(["11010519491231002X", "110105194912310021", "12345"])
    assert pii.id_number_is_valid(ids).to_list() == [True, False, False]


def test_free_text_masks_landlines_so_that_digits_are_really_hidden():
    # first 3 + last 4 of a 7-digit local number would keep every digit: short runs keep 4
    text = pl.Series(["电话0592-5123456", "座机010-62345678", "(0592)5123456", "金额128.47元"])
    masked = pii.mask_free_text(text).to_list()
    assert masked == ["电话0592-****3456", "座机010-****5678", "(0592)****3456", "金额128.47元"]
    for clear, out in zip(("5123456", "62345678", "5123456"), masked, strict=False):
        assert clear not in out.replace("*", "")


def _reference_tokens(values: Sequence[str | None], kind: str) -> list[str | None]:
    """The tokens as the reference implementations make them, apart from kesu's code: the kind
    key by `hmac`, then the first 16 bytes of BLAKE3 over its first 32 hex characters and the
    value, by the `blake3` package (the bindings of BLAKE3's reference implementation)."""
    kind_key = hmac.new(KEY, b"kesu token:" + kind.encode(), hashlib.sha256).hexdigest()[:32]
    return [
        None if v is None else blake3.blake3((kind_key + v).encode()).hexdigest()[:32]
        for v in values
    ]


def test_tokens_equal_the_blake3_reference():
    # the native plugin computes exactly what the reference implementations compute, per kind
    values = ["13812345678", "11010519491231002X", "欧阳娜娜", "", "长" * 40, None]
    tokens = {}
    for kind in ("phone", "id_number", "person_name"):
        tokens[kind] = pii.tokens(pl.Series(values, dtype=pl.String), KEY, kind).to_list()
        assert tokens[kind] == _reference_tokens(values, kind)
    # a phone number and an ID number never share a token
    assert tokens["phone"][0] != tokens["id_number"][0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=5))
def test_tokens_of_any_text_equal_the_reference(texts):
    # any UTF-8 text, shorter and longer than the half block left beside the key
    got = pii.tokens(pl.Series("t", texts, dtype=pl.String), KEY, "person_name").to_list()
    assert got == _reference_tokens(texts, "person_name")


def test_tokens_of_no_values():
    assert pii.tokens(pl.Series("p", [], dtype=pl.String), KEY, "phone").to_list() == []
    assert pii.tokens(pl.Series("p", [None], dtype=pl.String), KEY, "phone").to_list() == [None]


# Phones as exports write them: plain mobiles (most), full-width digits, separators, +86, junk
_PHONE_CHARS = st.sampled_from(
    [*"0123456789", *"１３８", " ", "-", "+", "（", "）", "　", ".", "x"]
)
_PHONES = st.one_of(
    st.from_regex(r"\A1[0-9]{10}\Z"),
    st.text(_PHONE_CHARS, max_size=16),
    st.text(max_size=12),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_PHONES, max_size=20))
@example(["13812345678", "1３８１２３４５６７８", "+8613812345678", "138123456789", "--", None])
def test_normalising_only_the_phones_not_written_plainly_changes_no_value(written):
    """`phone` leaves 11 plain ASCII digits starting with 1 as they are, and normalises the
    rest: the same as normalising every value."""
    values = pl.Series("phone", written, dtype=pl.String)
    everything = values.to_frame().select(pii._normal_phone(pl.col("phone"))).to_series()
    assert pii.normalize_phone(values).to_list() == everything.to_list()
