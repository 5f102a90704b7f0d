"""Which PII key a backfill on a Dask cluster may use: the workers' one key, and the key of the
machine starting it when that has one (a customer must get one token in one warehouse)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kesu.flows.cluster import key_here, worker_problems
from kesu.flows.config import ConfigError, load_settings
from kesu.flows.pii_key import PiiKey

API = "http://prefect.bank.internal:4200/api"
K1 = PiiKey(b"workers-key-0123456789abcdef", "KESU_PII_KEY", is_demo=False)
K2 = PiiKey(b"shells-key-0123456789abcdef", "KESU_PII_KEY", is_demo=False)


def on(*key_ids: str) -> dict[str, dict[str, str]]:
    return {f"w{i}": {"api": API, "key_id": k} for i, k in enumerate(key_ids, 1)}


def test_workers_on_another_key_than_this_command_are_refused_naming_both_key_ids():
    (problem,) = worker_problems(on(K1.key_id, K1.key_id), here=K2)
    assert f"key id {K1.key_id}" in problem and f"key id {K2.key_id}, from KESU_PII_KEY" in problem
    assert "workers-key" not in problem and "shells-key" not in problem  # ids, never the keys


@pytest.mark.parametrize(
    ("workers", "here"),
    [
        ((K2.key_id, K2.key_id), K2),  # the workers hold this command's key
        ((K1.key_id, K1.key_id), None),  # no key here: the workers' one key, as before
    ],
)
def test_workers_on_this_commands_key_or_on_one_key_when_it_has_none_are_ready(workers, here):
    assert worker_problems(on(*workers), here=here) == []


def test_workers_on_two_keys_one_of_them_this_commands_are_refused():
    problems = worker_problems(on(K1.key_id, K2.key_id), here=K2)
    assert problems[0] == "the workers hold 2 different PII keys; they need one"
    assert f"key id {K1.key_id})" in problems[1]


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    for name in ("KESU_PII_KEY", "KESU_PII_KEY_FILE", "KESU_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./kesu.toml
    return tmp_path


def test_the_key_here_is_found_as_preflight_finds_it(no_key, monkeypatch):
    settings = load_settings(landing=str(no_key / "landing"), warehouse=str(no_key / "wh"))
    assert key_here(settings) is None  # none here: the workers' key decides
    monkeypatch.setenv("KESU_PII_KEY_FILE", str(no_key / "only-on-the-workers.key"))
    assert key_here(settings) is None  # a key file at a path only the workers have
    key_file = no_key / "pii.key"
    key_file.write_text("shells-key-0123456789abcdef\n")
    key_file.chmod(0o600)
    monkeypatch.setenv("KESU_PII_KEY_FILE", str(key_file))
    found = key_here(settings)
    assert found is not None and found.key_id == K2.key_id
    monkeypatch.setenv("KESU_PII_KEY", "workers-key-0123456789abcdef")  # wins, as in preflight
    assert key_here(settings) == K1
    monkeypatch.setenv("KESU_PII_KEY", "short")  # set but unusable: refused, as by preflight
    with pytest.raises(ConfigError, match="KESU_PII_KEY must be at least 16 characters"):
        key_here(settings)


def test_the_demo_key_of_a_sample_landing_zone_is_the_key_here(no_key: Path):
    from kesu.flows.pii_key import SAMPLE_MARKER, ensure_demo_key, resolve_pii_key

    landing = no_key / "landing"
    landing.mkdir()
    (landing / SAMPLE_MARKER).write_text("")
    ensure_demo_key(landing)
    settings = load_settings(landing=str(landing), warehouse=str(no_key / "wh"))
    found = key_here(settings)
    assert found is not None and found.is_demo
    assert found.key_id == resolve_pii_key(settings).key_id
