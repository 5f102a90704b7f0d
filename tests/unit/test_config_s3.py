"""Configuration of an s3:// warehouse: the URL is kept as given, connection options come from
[s3] and KESU_S3_*, and credentials are refused in kesu.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from kesu.flows.config import ConfigError, load_settings
from kesu.warehouse import Warehouse, s3


def settings(tmp_path: Path, toml: str, **env: str):
    config = tmp_path / "kesu.toml"
    config.write_text(toml, encoding="utf-8")
    return load_settings(config=str(config), environ={"KESU_WAREHOUSE": "s3://bank-dw/kesu", **env})


def test_the_url_is_kept_unchanged_and_a_path_made_absolute(tmp_path: Path) -> None:
    remote = settings(tmp_path, "")
    assert remote.warehouse == "s3://bank-dw/kesu"  # Path() would give "s3:/bank-dw/kesu"
    local = load_settings(warehouse="data/wh", environ={})
    assert local.warehouse == Path("data/wh").absolute()


def test_endpoint_and_region_from_the_file_and_the_environment_over_it(tmp_path: Path) -> None:
    toml = '[s3]\nendpoint_url = "http://minio:9000"\nregion = "cn-north-1"\n'
    made = settings(tmp_path, toml).warehouse_store()
    assert made.options == s3.S3Options("http://minio:9000", "cn-north-1")
    made = settings(tmp_path, toml + '[warehouse]\nstate_dir = "/var/lib/kesu"\n',
                    KESU_S3_ENDPOINT="http://other:9000", KESU_S3_ADDRESSING="path")  # fmt: skip
    assert made.warehouse_store() == Warehouse.s3("s3://bank-dw/kesu", made.object_store)
    assert made.warehouse_store().options == s3.S3Options(
        "http://other:9000", "cn-north-1", "path", "/var/lib/kesu"
    )


@pytest.mark.parametrize(
    "toml,message",
    [
        ('[s3]\naws_secret_access_key = "x"\n', "credentials never go in kesu.toml"),
        ('[s3]\nsession_token = "x"\n', "credentials never go in kesu.toml"),
        ('[s3]\nendpoint = "http://x"\n', r"\[s3\] endpoint is unknown; known: endpoint_url"),
        ('[s3]\naddressing_style = "dns"\n', "addressing_style must be one of auto, path"),
    ],
)
def test_bad_s3_tables_are_refused_by_name(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, toml)


def test_a_url_without_a_bucket_or_of_another_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected s3://bucket"):
        load_settings(warehouse="s3://", environ={})
    with pytest.raises(ConfigError, match="only s3:// object stores"):
        load_settings(warehouse="gs://bucket/wh", environ={})


def test_the_options_travel_with_the_settings_to_another_process(tmp_path: Path) -> None:
    # A Dask worker receives the settings pickled, with their warehouse; the worker's
    # environment may lack KESU_S3_ENDPOINT.
    import subprocess
    import sys

    made = settings(tmp_path, '[s3]\nendpoint_url = "http://minio:9000"\n')
    assert made.warehouse_store().remote  # built before pickling: it travels along
    (tmp_path / "settings.pickle").write_bytes(__import__("pickle").dumps(made))
    code = (
        "import os, pickle, sys; os.environ.pop('KESU_S3_ENDPOINT', 0); "
        f"got = pickle.loads(open({str(tmp_path / 'settings.pickle')!r}, 'rb').read()); "
        "wh = got.warehouse_store(); "
        "assert wh.options.endpoint_url == 'http://minio:9000'; "
        "assert wh.store.client.meta.endpoint_url == 'http://minio:9000'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
