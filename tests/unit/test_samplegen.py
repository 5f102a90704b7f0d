"""The sample generator: landing layout, determinism, realism and the defects it injects.

Files are read back the way an outside reader would (Polars, every field as text), never through
the generator's own frames.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kesu.reference import BRANCHES, JRT0169_CODES, LABEL_MAP
from kesu.samplegen import lifecycle, transfers
from kesu.samplegen.branches import branch_frame
from kesu.samplegen.generate import SAMPLE_MARKER, SampleSummary, generate
from kesu.samplegen.orgs import load_branches
from kesu.samplegen.people import AREA_CODES, CITY_AREA_CODES, id_check_digit
from kesu.samplegen.profiles import PROFILES
from kesu.samplegen.taxonomy import load_taxonomy
from kesu.samplegen.texts import complaint_texts
from kesu.samplegen.world import LOOKBACK, World
from kesu.transforms.columns import COLUMNS, FEEDS, column, header_to_name

START = dt.date(2025, 3, 3)
DAYS = 14
END = START + dt.timedelta(days=DAYS - 1)
BANKLIKE = {"profile": "bank", "scale": 0.01, "seed": 7}  # bank proportions, ~3k calls a day
DATETIME = "%Y-%m-%d %H:%M:%S"
STATUS = column("complaints", "status").values  # 已受理 处理中 已办结 已撤诉
TRANSFER_STATUS = column("regulator_transfers", "status").values  # 待处理 处理中 已反馈 已办结
HOTLINE_INTAKE, REGULATOR_INTAKE = "客服热线", "监管转办"


def decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV and the encoding it was written in."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("gb18030"), "gb18030"


def read_file(path: Path) -> pl.DataFrame:
    if path.suffix == ".xlsx":
        return pl.read_excel(path, engine="calamine", infer_schema_length=0, raise_if_empty=False)
    text, _ = decode(path.read_bytes())
    return pl.read_csv(io.StringIO(text), infer_schema=False)


@functools.cache
def read_feed(landing: Path, feed: str) -> pl.DataFrame:
    """Every row of a feed with canonical names, plus its drop date and file name."""
    frames = []
    for path in sorted((landing / feed).glob("*/*")):
        frame = read_file(path).rename(header_to_name(feed))
        frames.append(
            frame.select([c.name for c in COLUMNS[feed]]).with_columns(
                drop=pl.lit(path.parent.name).str.to_date(), file=pl.lit(path.name)
            )
        )
    return pl.concat(frames)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != SAMPLE_MARKER  # the landing zone's marker: not a drop
    }


def code_of(axis: str) -> dict[str, str]:
    """Every accepted spelling (code, standard name, local label) -> code, for one JR/T axis."""
    codes = pl.read_csv(JRT0169_CODES, infer_schema=False).filter(pl.col("axis") == axis)
    labels = pl.read_csv(LABEL_MAP, infer_schema=False).filter(pl.col("axis") == axis)
    return {
        **dict(zip(codes["code"], codes["code"], strict=True)),
        **dict(zip(labels["label"], labels["code"], strict=True)),
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, SampleSummary, list[dt.date]]:
    root = tmp_path_factory.mktemp("clean") / "landing"
    days: list[dt.date] = []
    return root, generate(START, END, root, defects=False, progress=days.append, **BANKLIKE), days


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> tuple[Path, SampleSummary]:
    root = tmp_path_factory.mktemp("dirty") / "landing"
    return root, generate(START, START + dt.timedelta(days=9), root, defects=True, **BANKLIKE)


# --- personal data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first17, check",
    [
        ("11010519491231002", "X"),  # the example in GB 11643-1999 itself
        ("44052418800101001", "4"),  # ditto
        ("21020219900101001", "0"),  # by hand: weighted sum 122, 122 mod 11 = 1 -> "0"
    ],
)
def test_id_check_digit_matches_gb11643(first17, check):
    assert id_check_digit(first17) == check


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_id_check_digit_makes_the_weighted_sum_one_mod_11(first17):
    # ISO 7064 MOD 11-2: with the check value (X = 10) weighted 1, the total is 1 mod 11
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    check = id_check_digit(first17)
    value = 10 if check == "X" else int(check)
    assert (sum(int(d) * w for d, w in zip(first17, weights, strict=True)) + value) % 11 == 1


def test_generated_ids_names_and_phones_look_real(clean):
    tickets = read_feed(clean[0], "complaints").unique("complaint_id")
    ids = tickets["id_number"].to_list()
    areas = {
        c
        for table in (AREA_CODES, CITY_AREA_CODES)
        for codes in table.values()
        for c in codes.split()
    }
    for number in ids:
        assert len(number) == 18 and id_check_digit(number[:17]) == number[17], number
        assert number[:6] in areas
        born = dt.datetime.strptime(number[6:14], "%Y%m%d").date()
        assert 17 <= (START - born).days / 365.25 <= 86
    assert 0.03 < sum(i.endswith("X") for i in ids) / len(ids) < 0.2  # 1 in 11 on average
    assert all(1 < len(n) <= 4 for n in tickets["customer_name"])
    mobiles = [p for p in tickets["contact_phone"] if "-" not in p]
    assert all(len(p) == 11 and p[:3] not in ("154", "194") and p[0] == "1" for p in mobiles)


# --- layout and determinism -----------------------------------------------------------------


def test_layout_headers_and_nothing_outside_landing(clean):
    root, summary, _ = clean
    assert sorted(p.name for p in root.parent.iterdir()) == ["landing"]
    # the feeds, and the marker that lets the demo key serve this landing zone (issue 14)
    assert {p.name for p in root.iterdir()} == {*FEEDS, SAMPLE_MARKER}
    for path in root.rglob("*"):
        if path.is_file() and path.name != SAMPLE_MARKER:
            feed, day, name = path.relative_to(root).parts
            assert START <= dt.date.fromisoformat(day) <= END and not name.startswith(".")
            headers = read_file(path).columns
            assert headers == [c.header for c in COLUMNS[feed]], path  # clean: in spec order
    written = [p for p in root.rglob("*") if p.is_file() and p.name != SAMPLE_MARKER]
    assert sorted(summary.files) == sorted(written)
    assert summary.rows == {f: read_feed(root, f).height for f in FEEDS}


def test_same_seed_same_bytes_whatever_the_range(dirty, tmp_path):
    day = START + dt.timedelta(days=8)
    generate(day, day, tmp_path, defects=True, **BANKLIKE)  # one day of the range, on its own
    expected = {k: v for k, v in digests(dirty[0]).items() if day.isoformat() in k}
    assert any(name.endswith(".xlsx") for name in expected)  # the xlsx writer is covered too
    assert digests(tmp_path) == expected


def test_progress_is_called_once_per_day(clean):
    assert clean[2] == [START + dt.timedelta(days=i) for i in range(DAYS)]


# --- tickets, transfers and calls hang together ---------------------------------------------


def test_tickets_reappear_with_progressing_status_and_later_update(clean):
    tickets = read_feed(clean[0], "complaints").with_columns(
        rank=pl.col("status").replace_strict({s: min(i, 2) for i, s in enumerate(STATUS)}),
        updated=pl.col("updated_at").str.to_datetime(DATETIME),
    )
    assert tickets.select(pl.struct("complaint_id", "drop").is_unique().all()).item()
    history = (
        tickets.sort("drop")
        .group_by("complaint_id", maintain_order=True)
        .agg("rank", "updated", "drop", "received_at", "status", "extended")
    )
    for row in history.iter_rows(named=True):
        assert row["rank"] == sorted(row["rank"]), row  # never goes back
        assert row["updated"] == sorted(row["updated"]) and len(set(row["updated"])) == len(
            row["updated"]
        )
        assert [u.date() for u in row["updated"]] == row["drop"]  # a version lands on its day
        assert len(set(row["received_at"])) == 1
    born_here = history.filter(pl.col("received_at").list.first() >= START.isoformat())
    assert born_here["status"].list.first().unique().to_list() == [STATUS[0]]  # first: 已受理
    versions = history["rank"].list.len()
    assert versions.max() >= 3 and (versions >= 2).mean() > 0.5
    closed = tickets.filter(pl.col("status").is_in(STATUS[2:]))
    assert closed["closed_at"].null_count() == 0
    assert (closed["closed_at"] >= closed["received_at"]).all()
    # extended tickets took more than 15 days; the others mostly closed within 15
    span = closed.with_columns(
        days=(
            pl.col("closed_at").str.to_datetime(DATETIME).dt.date()
            - pl.col("received_at").str.to_datetime(DATETIME).dt.date()
        ).dt.total_days()
    )
    assert (span.filter(pl.col("extended") == "是")["days"] > 15).all()
    assert (span["days"] <= 15).mean() > 0.8


def test_repeats_point_to_an_earlier_open_ticket_of_the_same_customer(clean):
    tickets = read_feed(clean[0], "complaints")
    first = tickets.sort("drop").unique("complaint_id", keep="first")
    repeats = first.filter(pl.col("original_complaint_id").is_not_null())
    assert 0 < repeats.height < 0.1 * first.height
    categories = code_of("B")
    originals = {r["complaint_id"]: r for r in tickets.iter_rows(named=True)}
    for rep in repeats.iter_rows(named=True):
        orig = originals.get(rep["original_complaint_id"])
        if orig is None:  # created before the range started
            assert rep["original_complaint_id"] < f"TS{START:%Y%m%d}"
            continue
        assert orig["received_at"] < rep["received_at"]
        assert (orig["id_number"], orig["contact_phone"]) == (
            rep["id_number"],
            rep["contact_phone"],
        )
        assert categories[orig["business_category"]] == categories[rep["business_category"]]
        still_open = tickets.filter(
            (pl.col("complaint_id") == orig["complaint_id"]) & (pl.col("drop") < rep["drop"])
        )
        assert STATUS[2] not in still_open["status"].to_list()


def test_transfers_link_to_regulator_tickets_and_progress(clean):
    transfers = read_feed(clean[0], "regulator_transfers")
    tickets = read_feed(clean[0], "complaints").unique("complaint_id")
    intake = dict(zip(tickets["complaint_id"], tickets["intake_channel"], strict=True))
    linked = transfers.filter(pl.col("complaint_id").is_not_null())
    assert linked.height > 0.5 * transfers.height
    for ticket in linked["complaint_id"].unique():
        assert intake.get(ticket, REGULATOR_INTAKE) == REGULATOR_INTAKE  # may predate the range
    assert linked["complaint_id"].is_in(list(intake)).mean() > 0.5
    assert (transfers["due_on"] >= transfers["transferred_on"]).all()
    assert transfers["regulator"].str.starts_with("国家金融监督管理总局").all()
    assert transfers["regulator"].str.ends_with("监管局").all()
    replied = transfers.filter(pl.col("status").is_in(TRANSFER_STATUS[2:]))
    assert replied["replied_on"].null_count() == 0
    rank = {s: i for i, s in enumerate(TRANSFER_STATUS)}
    for rows in transfers.sort("drop").partition_by("transfer_id"):
        assert [rank[s] for s in rows["status"]] == sorted(rank[s] for s in rows["status"])
        links = rows["complaint_id"].to_list()
        assert links == sorted(links, key=lambda x: x is not None)  # once set, stays set
        assert rows["updated_at"].is_sorted() and rows["updated_at"].is_unique().all()


def test_hotline_calls_are_consistent_and_linked_to_tickets(clean):
    calls = read_feed(clean[0], "hotline")
    assert calls["call_id"].is_unique().all()
    times = calls.with_columns(
        [
            pl.col(c).str.to_datetime(DATETIME)
            for c in ("call_start_at", "queued_at", "answered_at", "hung_up_at")
        ]
    )
    assert (times["hung_up_at"] >= times["call_start_at"]).all()
    ivr = times.filter(pl.col("service_mode") == "自助语音")
    assert ivr.select(pl.col("queued_at", "answered_at", "agent_id").is_null().all()).row(0) == (
        True,
        True,
        True,
    )
    answered = times.filter(pl.col("answered_at").is_not_null())
    assert (answered["answered_at"] >= answered["queued_at"]).all()
    late = times.filter(pl.col("call_start_at").dt.date() < pl.col("drop"))
    assert 0 < late.height < 0.01 * times.height
    to_ticket = calls.filter(pl.col("outcome") == "转投诉")
    tickets = read_feed(clean[0], "complaints").unique("complaint_id")
    ticket_drop = dict(zip(tickets["complaint_id"], tickets["drop"], strict=True))
    intake = dict(zip(tickets["complaint_id"], tickets["intake_channel"], strict=True))
    assert to_ticket.height > 0 and to_ticket["complaint_id"].null_count() == 0
    for call in to_ticket.filter(pl.col("drop") < END).iter_rows(named=True):
        assert intake[call["complaint_id"]] == HOTLINE_INTAKE
        assert (ticket_drop[call["complaint_id"]] - call["drop"]).days in (0, 1)
    assert calls.filter(pl.col("outcome") != "转投诉")["complaint_id"].is_null().all()


# --- realism ---------------------------------------------------------------------------------


def share(frame: pl.DataFrame, name: str, value: str) -> float:
    return (frame[name] == value).mean()


def test_hotline_proportions_look_like_a_big_bank(clean):
    calls = read_feed(clean[0], "hotline")
    assert 0.83 < share(calls, "inquiry_category", "个人业务") < 0.88
    assert 0.07 < share(calls, "inquiry_category", "电子银行") < 0.10
    assert 0.25 < share(calls, "service_mode", "自助语音") < 0.35
    human = calls.filter(pl.col("queued_at").is_not_null())
    assert 0.90 < human["answered_at"].is_not_null().mean() < 0.96
    assert 0.02 < share(calls, "customer_mood", "不满") < 0.04
    assert 0.55 < share(calls, "survey_satisfaction", "未评价") < 0.65
    rated = calls.filter(pl.col("survey_satisfaction") != "未评价")
    assert share(rated, "survey_satisfaction", "满意") > 0.9
    intent = calls.filter(pl.col("complaint_intent") == "是")
    assert 0.45 < share(intent, "outcome", "已化解") < 0.65
    assert 0.25 < share(intent, "outcome", "转投诉") < 0.45
    top = calls["call_type"].value_counts().sort("count", descending=True)["call_type"][:2]
    assert set(top) == {"咨询", "查询"}


def test_ticket_proportions_look_like_a_big_bank(clean):
    tickets = read_feed(clean[0], "complaints").unique("complaint_id")
    assert 0.78 < share(tickets, "ticket_type", "投诉") < 0.92
    complaints = tickets.filter(pl.col("ticket_type") == "投诉")
    categories = complaints["business_category"].replace_strict(code_of("B"))
    counts = categories.value_counts().sort("count", descending=True)
    assert counts["business_category"][0] == "B03" and counts["count"][0] > 0.4 * complaints.height
    channels = tickets["intake_channel"].value_counts().sort("count", descending=True)
    assert channels["intake_channel"][0] == HOTLINE_INTAKE
    # labels are written all three ways: code, standard name, local label
    written = set(complaints["business_category"])
    assert {"B03", "信用卡", "信用卡业务"} <= written
    card = complaints.filter(categories == "B03")
    assert share(card, "branch_code", "9800") > 0.6  # the credit-card centre owns most of them
    assert complaints["channel"].replace_strict(code_of("A")).is_not_null().all()
    assert complaints["cause"].replace_strict(code_of("C")).is_not_null().all()


def test_free_text_carries_the_mess_real_text_has(clean):
    text = read_feed(clean[0], "complaints")["content"].unique().drop_nulls()
    assert text.str.contains(",").any() and text.str.contains('"').any()
    assert text.str.contains("\n").any()
    assert text.str.contains(r"1[3-9]\d{9}").any()  # a phone number


def test_free_text_sometimes_holds_personal_data_and_formula_bait():
    n = 3_000
    rng = np.random.default_rng(0)
    names, ids = ["张伟"] * n, ["11010519491231002X"] * n
    text = complaint_texts(rng, ["投诉"] * n, ["B03"] * n, names, ["13912345678"] * n, ids)
    assert 0.01 < np.mean(["11010519491231002X" in t for t in text]) < 0.2
    assert 0.01 < np.mean(["张伟" in t for t in text]) < 0.5
    assert 0 < sum(t.startswith(("=", "+")) for t in text) < 0.02 * n


# --- defects -----------------------------------------------------------------------------------


def test_clean_run_has_no_defects(clean):
    root, summary, _ = clean
    assert summary.defects == {}
    known = set(pl.read_csv(BRANCHES, infer_schema=False)["机构代码"])
    for path in root.rglob("*.csv"):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        data.decode("utf-8")
    assert len({p.parent for p in root.rglob("*.*")}) == len(list(root.rglob("*.*")))  # 1 file/day
    for feed in FEEDS:
        rows = read_feed(root, feed)
        assert not rows.drop("file").is_duplicated().any()
        for c in COLUMNS[feed]:
            values = rows[c.name].drop_nulls()
            if c.kind == "datetime":
                assert values.str.to_datetime(DATETIME, strict=True).null_count() == 0
            if c.kind == "date":
                assert values.str.to_date("%Y-%m-%d", strict=True).null_count() == 0
            if c.required:
                assert rows[c.name].null_count() == 0, (feed, c.name)
            if c.kind == "branch":
                names = set(pl.read_csv(BRANCHES, infer_schema=False)["机构名称"])
                assert values.is_in(list(known | names)).all()
            if c.kind == "category_label":
                assert values.is_in(list(code_of("B"))).all()


def test_defects_are_injected_and_counted(dirty):
    root, summary = dirty
    for kind in ("alt_datetime_format", "bad_datetime", "duplicate_row", "gb18030_file"):
        assert summary.defects.get(kind, 0) > 0, kind
    encodings = {decode(p.read_bytes())[1] for p in root.rglob("*.csv")}
    assert "gb18030" in encodings and "utf-8" in encodings
    calls = read_feed(root, "hotline")
    assert calls.drop("file").is_duplicated().any()  # exact copies of a row
    spec = {feed: [c.header for c in COLUMNS[feed]] for feed in FEEDS}
    shuffled = [
        p
        for p in root.rglob("*.*")
        if p.name != SAMPLE_MARKER and read_file(p).columns != spec[p.parts[-3]]
    ]
    assert len(shuffled) == summary.defects.get("shuffled_columns", 0)
    garbage = pl.lit(False)
    for name in ("call_start_at", "hung_up_at"):
        usual = pl.col(name).str.to_datetime(DATETIME, strict=False).is_not_null()
        other = pl.col(name).str.to_datetime("%Y/%m/%d %H:%M", strict=False).is_not_null()
        garbage = garbage | ~(usual | other)
        assert calls.select(other.sum()).item() > 0  # the other accepted format
    assert 0.001 < calls.select(garbage.mean()).item() < 0.005  # and unparseable values


def test_defect_rates_scale_to_a_small_share(dirty):
    root, summary = dirty
    rows = sum(summary.rows.values())
    row_defects = sum(
        v for k, v in summary.defects.items() if not k.endswith(("file", "drop", "columns"))
    )
    assert 0.005 < row_defects / rows < 0.03


def test_small_profile_month_shows_every_feed_and_some_defects(tmp_path):
    start = dt.date(2025, 4, 1)
    month, other = tmp_path / "month", tmp_path / "other"
    summary = generate(start, start + dt.timedelta(days=29), month, profile="small", seed=3)
    assert 2_500 < summary.rows["hotline"] < 3_600
    assert 20 < summary.rows["complaints"] < 200
    assert summary.rows["regulator_transfers"] > 0
    transfer_days = {
        p.parent.name for p in (month / "regulator_transfers").rglob("*.*") if read_file(p).height
    }
    assert len(transfer_days) >= 5  # a transfer every few days
    assert sum(summary.defects.values()) > 0
    calls = read_feed(month, "hotline")
    owners = calls["branch_code"].drop_nulls()
    assert (owners.str.starts_with("32") | (owners == "9800")).all()  # one city: 大连, + cards
    # another seed, other data; a rerun replaces our own files of the day, and only those
    folder = other / "hotline" / start.isoformat()
    folder.mkdir(parents=True)
    (folder / f"hotline_{start:%Y%m%d}_part2.csv").write_text("stale")
    (folder / "notes.csv").write_text("not ours")
    generate(start, start, other, profile="small", seed=4, defects=False)
    assert sorted(p.name for p in folder.iterdir()) == [f"hotline_{start:%Y%m%d}.csv", "notes.csv"]
    (folder / "notes.csv").unlink()
    changed, first = digests(other), digests(month)
    busy = [k for k in changed if not k.startswith("regulator")]  # that one may be header-only
    assert busy and all(changed[k] != first.get(k) for k in busy)


# --- the branch reference ------------------------------------------------------------------------


def test_branch_reference_is_the_committed_build_output():
    committed = pl.read_csv(BRANCHES, infer_schema=False)
    assert committed.equals(branch_frame())
    assert (
        committed["机构代码"].is_unique().all()
        and committed["机构代码"].str.len_chars().eq(4).all()
    )
    kinds = committed["机构类型"].value_counts()
    count = dict(zip(kinds["机构类型"], kinds["count"], strict=True))
    assert count["总行"] == 1 and count["信用卡中心"] == 1 and count["客服中心"] == 1
    assert count["分行"] == 36  # 31 provinces and 5 计划单列市
    per_tier1 = committed.filter(pl.col("机构类型") == "支行").group_by("上级机构代码").len()
    assert per_tier1["len"].min() >= 3 and per_tier1["len"].max() <= 8
    assert set(committed["城乡"]) == {"城区", "乡镇"}
    assert "金泉银行大连分行" in committed["机构名称"].to_list()


def test_every_version_falls_inside_the_lookback_of_a_drop():
    # a drop collects versions from records created up to LOOKBACK days before it; anything
    # planned later would silently never be exported
    rng = np.random.default_rng(1)
    types = np.array(["投诉", "意见", "表扬"])[rng.integers(0, 3, 100_000)]
    assert lifecycle.close_days(rng, types, rng.random(100_000) < 0.03).max() < LOOKBACK
    world = World(PROFILES["bank"], 1, 1.0, load_branches(BRANCHES), load_taxonomy())
    for back in range(0, 70, 7):
        created = START - dt.timedelta(days=back)
        last = max(transfers.versions_by_day(world, created))
        assert last - created.toordinal() < LOOKBACK
