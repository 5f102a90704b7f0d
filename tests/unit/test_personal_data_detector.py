"""One detector for personal data in any text: every way a phone, ID or card is written."""

from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kesu.transforms import personal_data
from kesu.transforms.personal_data import (
    has_personal_data,
    luhn_valid,
    mask_message,
    mask_personal_data,
    masked_file_name,
)
from kesu.warehouse.landing import read_source


@pytest.mark.parametrize(
    ("given", "expect"),
    [
        # mobiles with any separators, a country code, full-width digits
        ("138.3333.4444", "138****4444"),
        ("138 - 6666 - 7777", "138****7777"),
        ("1385555-6666", "138****6666"),
        ("138 1234 5678", "138****5678"),
        ("１３８１２３４５６７８", "138****5678"),
        ("１３８－１２３４－５６７８", "138****5678"),
        ("（０５９２）５１２３４５６", "（0592）****3456"),
        ("+86 138-1234-5678", "138****5678"),
        ("008613912345641", "139****5641"),  # 0086 glued on: as +86 or 0086 with a space
        ("0086 139 1234 5641", "139****5641"),
        ("电话008613912345641", "电话139****5641"),
        ("139/1234/5621", "139****5621"),  # slashes between the digits
        ("客户电话139/1234/5621", "客户电话139****5621"),
        ("139／1234／5621", "139****5621"),
        # underscores, the hyphens of word processors (U+2010, U+2011), the minus sign, the
        # middle dots of input methods, a bracket round the first three digits
        ("收费138_1001_0001", "收费138****0001"),
        ("hotline_138_1010_0010.csv", "hotline_138****0010.csv"),
        ("１３８＿１２３４＿５６７８", "138****5678"),
        ("理财\u2010139\u20101002\u20100002", "理财\u2010139****0002"),
        ("138\u20111234\u20115678", "138****5678"),
        ("138\u22121234\u22125678", "138****5678"),
        ("138・1018・0018", "138****0018"),
        ("138･1234･5678", "138****5678"),
        ("贷款(138)10190019", "贷款(138****0019"),
        ("（138）1019 0019", "（138****0019"),
        ("电话：138 1234 5678。", "电话：138****5678。"),
        ("13812345678,13987654321", "138****5678,139****4321"),
        ("坐席:13812345678", "坐席:138****5678"),
        # resident IDs, separators or spaces anywhere, X either case
        ("11010519491231002X", "1101**********002X"),
        ("110105 19491231 002X", "1101**********002X"),
        ("身份证1101 0519 4912 3100 2x号", "身份证1101**********002x号"),
        ("１１０１０５１９４９１２３１００２Ｘ", "1101**********002X"),
        # bank cards: contiguous or in fours, Luhn-valid
        ("4111111111111111", "4111****1111"),
        ("卡号6222 0212 3456 7890 128", "卡号6222****0128"),
        ("6222-0212-3456-7890-128", "6222****0128"),
        # ...or in other groups of 4 to 6 digits, then the rest: 6+13, 4+6+5, 6+6+7
        ("622202-1234567890128", "6222****0128"),
        ("卡号622202 1234567890128被盗刷", "卡号6222****0128被盗刷"),
        ("3782 822463 10005", "3782****0005"),
        ("622202 123456 7890128", "6222****0128"),
        ("卡号4111.1111.1111.1111", "卡号4111****1111"),  # dots or underscores between groups
        ("4111_1111_1111_1111", "4111****1111"),
        # spaces of copied text between the digits, and characters that show as nothing: a
        # no-break space, an en space, a zero-width space or joiner, a soft hyphen, a BOM
        ("电话138\u00a00013\u00a08000", "电话138****8000"),
        ("138\u20020013\u20028000", "138****8000"),
        ("客户电话138\u200b0013\u200b8000", "客户电话138****8000"),
        ("1\u200c3\u200d8\u20600013 8000", "138****8000"),
        ("电话138\u00ad0013\u00ad8000。", "电话138****8000。"),
        ("138\ufeff00138000", "138****8000"),
        ("身份证11010519491231002\u200bX", "身份证1101**********002X"),
        ("卡号4111\u00a01111\u00a01111\u00a01111", "卡号4111****1111"),
        # landlines: the area code stays, the local number keeps its last 4
        ("0592-5123456", "0592-****3456"),
        ("(0592)5123456", "(0592)****3456"),
        ("010 62345678", "010 ****5678"),
    ],
)
def test_personal_data_is_masked_however_it_is_written(given, expect):
    assert mask_personal_data(pl.Series([given]))[0] == expect
    assert mask_personal_data(pl.Series([given]), free_text=True)[0] == expect
    assert has_personal_data(pl.Series([given]))[0]


@pytest.mark.parametrize(
    ("given", "expect"),
    [
        # separators Chinese users type, each of which let the number through in clear: the
        # input method's dash (two em dashes), doubled dashes, marks with a space between them
        ("139——1234——5678", "139****5678"),
        ("电话：139——1234——5678。", "电话：139****5678。"),
        ("139--1234--5678", "139****5678"),
        ("139- -1234- -5678", "139****5678"),
        ("139 —— 1234 —— 5678", "139****5678"),
        # the enumeration comma, the full-width comma, tildes, stars
        ("139、1234、5678", "139****5678"),
        ("139，1234，5678", "139****5678"),
        ("139~1234~5678", "139****5678"),
        ("139～1234～5678", "139****5678"),
        ("139*1234*5678", "139****5678"),
        # the figure dash, the horizontal bar, the one-dot leader
        ("139\u20121234\u20125678", "139****5678"),
        ("139\u20151234\u20155678", "139****5678"),
        ("139\u20241234\u20245678", "139****5678"),
        # an opening bracket between digits, ASCII or full-width
        ("139(1234)5678", "139****5678"),
        ("139（1234）5678", "139****5678"),
        # a line break between digit groups (LF, CRLF)
        ("139\n1234\n5678", "139****5678"),
        ("来电139\r\n1234\r\n5678", "来电139****5678"),
        ("1391234\n5678", "139****5678"),
        # resident IDs with doubled dashes or a line break after the region code
        ("110105--19880808--0111", "1101**********0111"),
        ("110105\n198808080111", "1101**********0111"),
        ("110105\r\n19880808\r\n0111", "1101**********0111"),
        # a card and a landline with the input method's dash
        ("6222——0212——3456——7890——128", "6222****0128"),
        ("0592——5123456", "0592——****3456"),
    ],
)
def test_personal_data_written_with_the_separators_chinese_users_type_is_masked(given, expect):
    assert mask_personal_data(pl.Series([given]))[0] == expect
    assert mask_personal_data(pl.Series([given]), ids=True)[0] == expect
    assert mask_personal_data(pl.Series([given]), free_text=True)[0] == expect


@pytest.mark.parametrize(
    "given",
    [
        # dates and date ranges written with the new separators
        "2025-07-03",
        "2025——07——03",
        "2025、07、03",
        "2025-07-01~2025-07-31",
        "2025-07-01——2025-07-31",
        "2025.07.01—2025.07.31",
        "20250701——20250731",
        "20250701~20250731",
        "2025年7月1日——2025年7月31日",
        # amounts: the ASCII comma is a thousands separator, not a number's separator
        "1,234.56",
        "13,800,000.00",
        "13,800,000,000.00",
        "13，800，000.00",
        # lists, times, ids, masks already applied
        "1、2、3",
        "第13、14、15、16、17、18条",
        "12:30",
        "12:30~13:45",
        "C2025030300001",
        "138****5678",
        "1101**********002X",
    ],
)
def test_dates_amounts_lists_and_ids_stay_as_written_with_the_new_separators(given):
    values = pl.Series([given])
    assert mask_personal_data(values).to_list() == [given]
    assert mask_personal_data(values, ids=True).to_list() == [given]
    assert mask_personal_data(values, free_text=True).to_list() == [given]


def test_a_long_run_and_a_line_break_no_longer_show_most_of_a_phone_in_free_text():
    # before: `1391234` was a 7-digit run and `5678` too short, `****1234\n5678`: 8 of 11 shown
    text = pl.Series(["客户电话1391234\n5678，请回电"])
    assert mask_personal_data(text, free_text=True)[0] == "客户电话139****5678，请回电"


@pytest.mark.parametrize(
    "given",
    [
        "金额1,234.56元",  # amounts
        "12345.67",
        "2025-03-03 12:34:56",  # dates and times
        "2025.03.03",
        "C2025030300001",  # call, ticket, transfer and agent ids
        "TS202503030000012",
        "ZB202503030001",
        "KF10023",
        "C202503030000128",  # call ids whose digits pass the Luhn check
        "C2025030300001231",
        "4111111111111112",  # 16 digits that fail the Luhn check: not a card (in an id column)
        "20250303000012345678",  # a 20-digit numeric id: no shape of personal data
        "1 234 567 890 123",  # 13 digits in groups of 3: an amount, not a card
        "20250701-20250731",  # a range of dates: groups of 8 are no card's
        "2025_07_01_0001",  # underscores between short runs
        "12345678901.50",  # an amount with a long integer part: no card's groups
        "(2025)0701",
        "0086-10023",
        "1101",
        None,
    ],
)
def test_structured_values_without_personal_data_stay_as_written(given):
    values = pl.Series([given], dtype=pl.String)
    assert mask_personal_data(values).to_list() == [given]
    assert mask_personal_data(values, ids=True).to_list() == [given]
    assert not has_personal_data(values)[0]
    assert not has_personal_data(values, ids=True)[0]


@pytest.mark.parametrize(
    ("given", "in_an_id", "elsewhere"),
    [
        # in an id column, digits glued to a Latin letter are part of the id (an agent id);
        # in a label, free text, a file name or a message a letter is like any other character
        ("KF13812345678", "KF13812345678", "KF138****5678"),
        ("Tel13912345642", "Tel13912345642", "Tel139****5642"),
        ("hotline_tel13912345652.csv", "hotline_tel13912345652.csv", "hotline_tel139****5652.csv"),
        ("ID11010519491231011X", "ID11010519491231011X", "ID1101**********011X"),
        ("Fax0592-5123456", "Fax0592-5123456", "Fax0592-****3456"),
        # a number after a character that is not a letter is masked in an id column too
        ("KF-13812345678", "KF-138****5678", "KF-138****5678"),
    ],
)
def test_digits_glued_to_a_latin_letter_are_an_id_only_in_an_id_column(given, in_an_id, elsewhere):
    values = pl.Series([given])
    assert mask_personal_data(values, ids=True)[0] == in_an_id
    assert mask_personal_data(values)[0] == elsewhere
    assert mask_personal_data(values, free_text=True)[0] == elsewhere
    assert has_personal_data(values)[0]
    assert has_personal_data(values, ids=True)[0] == (in_an_id != given)


def test_free_text_masks_phones_and_ids_glued_to_latin_letters():
    text = pl.Series(["客户TEL13912345610，身份证号ID11010519491231011X"])
    masked = "客户TEL139****5610，身份证号ID1101**********011X"
    assert mask_personal_data(text, free_text=True)[0] == masked


@pytest.mark.parametrize(
    "given",
    [
        # cards and other long digit runs glued to a letter stay ids everywhere: ticket and call
        # ids have a card's length, and the digits of one in ten pass the Luhn check
        "此前投诉（TS202503030000012）",
        "通话C2025030300001",
        "通话C202503030000128",
    ],
)
def test_long_runs_glued_to_a_latin_letter_stay_ids_in_free_text(given):
    assert mask_personal_data(pl.Series([given]), free_text=True)[0] == given


@pytest.mark.parametrize(
    ("given", "expect"),
    [
        # free text: other long digit runs are masked too; 11+ keep 3 + 4, 7-10 keep 4
        ("账号20250303000012345678", "账号202****5678"),
        ("QQ号 12345678", "QQ号 ****5678"),
        ("订单4111111111111112", "订单411****1112"),
        # ...but not an 8-digit date, an amount, or an id glued to letters
        ("20250303来电", "20250303来电"),
        ("涉及金额1,234.56元", "涉及金额1,234.56元"),
        ("此前投诉（TS202503030000012）", "此前投诉（TS202503030000012）"),
        ("通话C2025030300001", "通话C2025030300001"),
    ],
)
def test_free_text_masks_other_long_digit_runs(given, expect):
    assert mask_personal_data(pl.Series([given]), free_text=True)[0] == expect


@pytest.mark.parametrize(
    "written",
    [
        # dates and date-times written with slashes (now a separator between a number's digits)
        # stay as written, alone or in text, as those written with dashes and dots always did
        "2025/07/03",
        "2025/07/03 12:30",
        "2025/7/3 9:05:59",
        "1999/12/31 23:59:59",
        "YYYY/MM/DD",
        "来电2025/07/03 12:30，回访2025/07/05 09:00",
        "2025/07/03-2025/07/05",
        "2025/07/03 12:30:00 - 2025/07/03 13:45:00",
        "受理于2025/07/03，金额1,234.56元",
        "12/31 23:59",
    ],
)
def test_dates_and_times_written_with_slashes_stay_as_written(written):
    values = pl.Series([written])
    assert mask_personal_data(values).to_list() == [written]
    assert mask_personal_data(values, free_text=True).to_list() == [written]
    assert mask_personal_data(values, ids=True).to_list() == [written]


def test_full_width_digits_read_as_ascii_in_text_without_personal_data():
    assert mask_personal_data(pl.Series(["１２月３日"]))[0] == "12月3日"
    assert not has_personal_data(pl.Series(["１２月３日"]))[0]


def test_luhn():
    # 79927398713 is the textbook example; one digit changed breaks it
    cards = pl.Series(["4111111111111111", "79927398713", "79927398712", "4111111111111112"])
    assert luhn_valid(cards).to_list() == [True, True, False, False]
    assert luhn_valid(pl.Series([], dtype=pl.String)).to_list() == []


def _luhn_one_by_one(number: str) -> bool:
    """The reference: the Luhn sum of the last 19 digits, right to left (not ASCII: 0)."""
    total = 0
    for place, char in enumerate(reversed(number[-19:])):
        digit = int(char) if char in "0123456789" else 0
        total += (digit * 2 - 9 if digit > 4 else digit * 2) if place % 2 else digit
    return total % 10 == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=13, max_size=19), max_size=30))
@example(["4111111111111111", "6222021234567890128", "0000000000000"])
@example(["٣٣٣٣٣٣٣٣٣٣٣٣٣", "41111111111111١١"])  # other scripts' digits (a card's \d) count 0
def test_luhn_agrees_with_the_check_digit_by_digit(numbers):
    expected = [_luhn_one_by_one(n) for n in numbers]
    assert luhn_valid(pl.Series(numbers, dtype=pl.String)).to_list() == expected


def test_messages_and_file_names_are_masked():
    assert mask_message("hotline_13812345678.csv") == "hotline_138****5678.csv"
    assert (
        mask_message("bad record: 张三,110105194912310021") == "bad record: 张三,1101**********0021"
    )


def test_a_file_name_with_personal_data_is_stored_masked_with_its_hash():
    sha = "1a2b3c4d" + "0" * 56
    assert masked_file_name("hotline_2025-03-03.csv", sha) == "hotline_2025-03-03.csv"
    assert masked_file_name("export_00012345.csv", sha) == "export_00012345.csv"
    assert masked_file_name("张三13812345678投诉.csv", sha) == "张三138****5678投诉~1a2b3c4d.csv"
    assert masked_file_name("110105 19491231 002X", sha) == "1101**********002X~1a2b3c4d"
    # a letter before the number is like any other character in a file or folder name
    assert masked_file_name("hotline_tel13912345652.csv", sha) == (
        "hotline_tel139****5652~1a2b3c4d.csv"
    )
    assert mask_message("rec13912345655") == "rec139****5655"


def test_a_malformed_csv_note_never_quotes_the_record():
    data = '通话编号,主叫号码,业务小类\nC1,13812345678,a\nC2,"张三 13912345678,b\nC3,1,c\n'
    notes = read_source(Path("calls.csv"), data.encode()).notes
    assert notes == [
        "malformed CSV (a quote out of place); read line by line, 1 record(s) held for a quote"
    ]


@pytest.mark.parametrize(
    "parsed",
    [
        "999999999",  # the longest whole number staging parses (9 digits)
        "-123456789.000",
        "2025-07-01 23:59:59",
        "2025-07-01 23:59",
        "2025/07/01 23:59:59",
        "2025年07月01日 23:59:59",
        "２０２５-０７-０１ ２３:５９:５９",
        "2025-07-01",
        "是",
    ],
)
def test_text_staging_parsed_holds_no_personal_data_for_the_detector(parsed):
    # staging shows held rows' parsed dates, times, whole numbers and 是/否 unmasked
    # (staging._masked_at): the detector must agree that none of them holds any
    assert not has_personal_data(pl.Series([parsed]))[0]


# digits, full-width ones, every separator and bracket the shapes know, letters and a space
_NUMBERISH = st.text(
    alphabet="0123456789０１２３０５８９ -.·—－．/／_＿\u2010\u2212・　()（）+Xx号C、，~*\n",
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_NUMBERISH, max_size=40), st.booleans())
@example(
    ["(0592)5123456", "（０５９２）５１２３４５６", "010 62345678", "+86 138-1234-5678"], False
)
@example(
    ["hotline_20250705.csv", "C2025030300001", "1234567", "0592)-5123456", "010-6234567"], True
)
@example(["C13812345678", "008613812345678", "139/1234/5621", "C0592-5123456"], False)
def test_the_shapes_prefilter_passes_every_value_the_shapes_would_change(written, ids):
    """Outside free text, only values with a run of 10+ digits go through the shapes: running
    them on every value changes nothing more."""
    text = pl.Series(written, dtype=pl.String)
    everything = personal_data._masked(personal_data._ascii(text), free_text=False, ids=ids)
    assert mask_personal_data(text, ids=ids).to_list() == everything.to_list()


_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=2)


@st.composite
def _written_date_times(draw):
    """A date or date-time as the feeds may write one, plausible or not (`2025-13-45 25:61`)."""
    year = draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    seps = draw(st.sampled_from(["-", "/", "."]))
    date = f"{year}{seps}{draw(_DIGITS)}{seps}{draw(_DIGITS)}"
    if not draw(st.booleans()):
        return date
    time = f"{draw(_DIGITS)}:{draw(_DIGITS)}"
    if draw(st.booleans()):
        time += f":{draw(_DIGITS)}"
    return f"{date}{draw(st.sampled_from([' ', 'T']))}{time}"


@settings(max_examples=80, deadline=None)
@given(st.lists(_written_date_times(), min_size=1, max_size=20), st.booleans())
@example(["1380-01-38 00:13", "0592-51-23 45:67", "8613-80-01 38:00", "4111-11-11 11:11:11"], True)
@example(["2025-07-03 12:30:00", "1999.12.31 23:59:59", "0101/02/03"], False)
def test_a_held_date_time_skips_the_detector_which_would_leave_it_as_written(written, free_text):
    """`mask_personal_data` gives a value that is wholly a date-time back as it is, without the
    replacements (`_DATE_TIME`): here they run, and change none of them."""
    text = pl.Series(written, dtype=pl.String)
    assert text.str.contains(personal_data._DATE_TIME).all()  # what the detector skips
    assert personal_data._masked(text, free_text).to_list() == written
    mixed = pl.Series([*written, "电话13812345678"], dtype=pl.String)
    assert mask_personal_data(mixed, free_text).to_list() == [*written, "电话138****5678"]
