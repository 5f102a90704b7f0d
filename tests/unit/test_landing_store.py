"""The landing zone's readers: an s3:// landing zone (moto's real server on loopback) lists and
reads a drop exactly as the same files on a local disk, and says what is wrong in one line."""

from __future__ import annotations

import pickle
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.config import ConfigError, load_settings
from kesu.flows.pii_key import ensure_demo_key, resolve_pii_key
from kesu.flows.preflight import landing_exists
from kesu.samplegen import writer
from kesu.samplegen.generate import SAMPLE_MARKER
from kesu.warehouse.landing import read_source
from kesu.warehouse.landing_store import LandingMissing, LocalLanding, S3Landing, open_landing
from kesu.warehouse.s3 import ObjectStoreError, S3Options

DAY = date(2025, 3, 30)
CSV = "通话编号,来电时间\r\nC1,2025-03-30 08:00:00\r\n".encode()
# one drop folder: what is read, and each kind of file that is skipped, with the reason why
TREE = {
    "a.csv": CSV,
    "B.CSV": CSV + b"C2,2025-03-30 09:00:00\r\n",
    ".hidden.csv": CSV,  # hidden or temporary file
    "~$transfers.xlsx": b"lock",  # Excel's lock file: hidden or temporary file
    "notes.txt": b"not a feed",  # not a .csv, .xlsx or .xls file
    "huge.csv": CSV + b"C3," + b"x" * 300 + b"\r\n",  # larger than the limit below
}
LIMIT = 200
EXPECTED_FILES = ["B.CSV", "a.csv"]
EXPECTED_SKIPPED = [
    (".hidden.csv", "hidden or temporary file"),
    ("huge.csv", "larger than 200 bytes (split the export)"),
    ("notes.txt", "not a .csv, .xlsx or .xls file"),
    ("sub", "not a regular file"),
    ("~$transfers.xlsx", "hidden or temporary file"),
]


def s3_landing(s3, url: str, max_bytes: int = LIMIT) -> S3Landing:
    return S3Landing(url, S3Options(endpoint_url=s3.endpoint), max_bytes)


def put_tree(s3, url: str, day: date = DAY) -> None:
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    client = s3.client()
    for name, data in TREE.items():
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}/hotline/{day}/{name}", Body=data)
    # a "folder" object inside the drop (what a console's "create folder" leaves)
    client.put_object(Bucket=s3.bucket, Key=f"{prefix}/hotline/{day}/sub/", Body=b"")


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    folder = tmp_path / "landing" / "hotline" / DAY.isoformat()
    (folder / "sub").mkdir(parents=True)
    for name, data in TREE.items():
        (folder / name).write_bytes(data)
    return tmp_path / "landing"


def test_s3_lists_and_reads_a_drop_as_the_local_disk_does(s3, local_tree: Path) -> None:
    url = s3.url("landing")
    put_tree(s3, url)
    remote = s3_landing(s3, url).list_drop("hotline", DAY)
    local = LocalLanding(local_tree, LIMIT).list_drop("hotline", DAY)
    assert remote.exists and local.exists
    assert remote.folder == f"{url}/hotline/{DAY}"
    assert [Path(f).name for f in remote.files] == EXPECTED_FILES
    assert [Path(f).name for f in local.files] == EXPECTED_FILES
    assert remote.skipped == local.skipped == EXPECTED_SKIPPED
    for r, lf in zip(remote.files, local.files, strict=True):
        assert s3_landing(s3, url).read(r) == LocalLanding(local_tree).read(lf) == TREE[lf.name]


def test_a_missing_drop_is_no_folder_and_a_folder_marker_an_empty_drop(s3) -> None:
    url = s3.url("landing")
    put_tree(s3, url)
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    s3.client().put_object(Bucket=s3.bucket, Key=f"{prefix}/hotline/2025-03-31/", Body=b"")
    landing = s3_landing(s3, url)
    missing = landing.list_drop("complaints", DAY)
    assert (missing.exists, missing.files, missing.skipped) == (False, [], [])
    empty = landing.list_drop("hotline", date(2025, 3, 31))
    assert (empty.exists, empty.files, empty.skipped) == (True, [], [])


def test_an_object_over_the_limit_is_not_read(s3) -> None:
    url = s3.url("landing")
    put_tree(s3, url)
    with pytest.raises(ValueError, match=r"^huge.csv: larger than 200 bytes"):
        s3_landing(s3, url).read(f"{url}/hotline/{DAY}/huge.csv")
    with pytest.raises(ValueError, match="not in the landing zone"):
        s3_landing(s3, url).read(f"s3://{s3.bucket}/elsewhere/hotline/{DAY}/a.csv")


def test_a_missing_bucket_and_a_wrong_prefix_say_so_in_one_line(s3) -> None:
    with pytest.raises(ObjectStoreError, match=r"bucket 'no-such-bucket' does not exist at http"):
        s3_landing(s3, "s3://no-such-bucket/landing").check()
    with pytest.raises(ObjectStoreError, match="bucket 'no-such-bucket' does not exist"):
        s3_landing(s3, "s3://no-such-bucket/landing").list_drop("hotline", DAY)
    url = s3.url("landing")
    put_tree(s3, url)
    s3_landing(s3, url).check()  # the bucket answers and the prefix holds the drops
    wrong = url + "-typo"
    with pytest.raises(LandingMissing, match=rf"^landing zone {wrong} holds no object"):
        s3_landing(s3, wrong).check()


def test_the_reader_pickles_without_a_client_and_works_after(s3) -> None:
    url = s3.url("landing")
    put_tree(s3, url)
    landing = s3_landing(s3, url)
    landing.list_drop("hotline", DAY)  # its client exists in this process now
    copy = pickle.loads(pickle.dumps(landing))  # what a Dask worker receives
    assert copy == landing
    assert [Path(f).name for f in copy.list_drop("hotline", DAY).files] == EXPECTED_FILES


def test_an_xlsx_is_read_from_the_objects_bytes(s3) -> None:
    table = pl.DataFrame({"转办单号": ["R1", "R2"], "转办日期": ["2025-03-30", "2025-03-30"]})
    data = writer.xlsx_bytes(table, datetime(2025, 3, 30, 23))
    url = s3.url("landing")
    key = f"{url.removeprefix(f's3://{s3.bucket}/')}/regulator_transfers/{DAY}/t.xlsx"
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=data)
    landing = s3_landing(s3, url, max_bytes=1 << 20)
    (file,) = landing.list_drop("regulator_transfers", DAY).files
    frame = read_source(Path(file), landing.read(file)).frame
    assert frame.drop("_line", "_ragged").to_dicts() == table.to_dicts()


def test_settings_keep_an_s3_landing_url_with_the_s3_options(tmp_path: Path) -> None:
    config = tmp_path / "kesu.toml"
    config.write_text('[s3]\nendpoint_url = "http://minio:9000"\n', encoding="utf-8")
    env = {"KESU_LANDING": "s3://bank-landing/exports", "KESU_S3_REGION": "cn-north-1"}
    settings = load_settings(config=str(config), warehouse=str(tmp_path / "wh"), environ=env)
    assert settings.landing == "s3://bank-landing/exports"
    assert settings.landing_options == S3Options("http://minio:9000", "cn-north-1")
    assert settings.object_store is None  # the warehouse is local
    reader = open_landing(settings.landing, settings.landing_options)
    assert reader == S3Landing("s3://bank-landing/exports", settings.landing_options)
    assert reader.describe() == "s3://bank-landing/exports"
    with pytest.raises(ConfigError, match="expected s3://bucket"):
        load_settings(landing="s3://", environ={})
    with pytest.raises(ConfigError, match="only s3:// object stores"):
        load_settings(landing="gs://bucket/landing", environ={})


def test_an_s3_landing_zone_never_gets_the_demo_key(tmp_path: Path) -> None:
    # a marked local landing zone with its demo key beside it is served ...
    local = tmp_path / "landing"
    local.mkdir()
    (local / SAMPLE_MARKER).write_text("", encoding="utf-8")
    ensure_demo_key(local)
    assert resolve_pii_key(load_settings(landing=str(local), environ={}), environ={}).is_demo
    # ... an s3:// one is not, whatever the working directory holds
    remote = load_settings(landing="s3://bank-landing/exports", environ={})
    with pytest.raises(ConfigError, match="no key for tokenizing personal data"):
        resolve_pii_key(remote, environ={})


def test_preflight_names_a_missing_landing_zone(s3, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"landing zone .*nowhere does not exist; give --landing"):
        landing_exists(load_settings(landing=str(tmp_path / "nowhere"), environ={}))
    wrong = s3.url("never-written")
    with pytest.raises(ConfigError, match=rf"landing zone {wrong} holds no object"):
        landing_exists(load_settings(landing=wrong, environ={"KESU_S3_ENDPOINT": s3.endpoint}))


def test_status_sees_the_same_landed_days_in_a_bucket_as_on_disk(s3, tmp_path: Path) -> None:
    from kesu.flows.status_cli import landing_days

    files = {
        "hotline/2025-03-30/a.csv": CSV,
        "hotline/2025-03-31/.partial.csv": CSV,  # only a hidden file: not landed
        "hotline/2025-13-01/a.csv": CSV,  # not a date: no drop
        "complaints/2025-03-30/sub/x.csv": CSV,  # something visible in the day: landed
    }
    url = s3.url("landing")
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    for name, data in files.items():
        s3.client().put_object(Bucket=s3.bucket, Key=f"{prefix}/{name}", Body=data)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    expected = {"hotline": {DAY}, "complaints": {DAY}, "regulator_transfers": set()}
    assert landing_days(tmp_path) == expected
    assert landing_days(url, S3Options(endpoint_url=s3.endpoint)) == expected


def test_status_sees_the_same_files_and_sizes_in_a_bucket_as_on_disk(s3, local_tree) -> None:
    # what `kesu status` compares with a run's inputs: the files `list_drop` reads, with their
    # sizes, from one listing of the feed on S3 (not one per day)
    url = s3.url("landing")
    put_tree(s3, url)
    put_tree(s3, url, date(2025, 3, 31))  # another day, not asked for
    expected = {DAY: {name: len(TREE[name]) for name in EXPECTED_FILES}}
    assert LocalLanding(local_tree, LIMIT).file_sizes("hotline", [DAY]) == expected
    assert s3_landing(s3, url).file_sizes("hotline", [DAY]) == expected
    none = {DAY: {}}  # a feed or a day without files
    assert s3_landing(s3, url).file_sizes("complaints", [DAY]) == none
    assert LocalLanding(local_tree, LIMIT).file_sizes("complaints", [DAY]) == none


def test_kesu_sample_refuses_to_write_to_a_bucket(tmp_path: Path, capsys, monkeypatch) -> None:
    from kesu.flows.cli import main

    monkeypatch.chdir(tmp_path)  # nothing may appear here (Path("s3://b") is "s3:/b")
    args = ["sample", "--start", "2025-03-30", "--end", "2025-03-30"]
    assert main([*args, "--landing", "s3://bank-landing/exports"]) == 2
    assert "kesu sample writes a local folder, not s3://bank-landing/exports" in (
        capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []


def test_an_xls_is_read_from_the_objects_bytes(s3) -> None:
    # the hand-built BIFF8 workbook of the corpus tests (no registry package writes .xls)
    from test_bad_input_corpus import _transfer_cells, _xls, transfer

    cells = _transfer_cells(transfer(1), transfer(2))
    url = s3.url("landing")
    key = f"{url.removeprefix(f's3://{s3.bucket}/')}/regulator_transfers/{DAY}/t.XLS"
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=_xls(cells))
    landing = s3_landing(s3, url, max_bytes=1 << 20)
    (file,) = landing.list_drop("regulator_transfers", DAY).files
    frame = read_source(Path(file), landing.read(file)).frame.drop("_line", "_ragged")
    header, *records = cells  # an empty cell reads as null
    assert frame.columns == header
    assert [list(r) for r in frame.rows()] == [[v or None for v in r] for r in records]
