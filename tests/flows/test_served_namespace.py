"""One import package: a served run resolves kesu's own code whatever folders the working
directory holds (a data team's `reports/`, `flows/`, `warehouse/` …)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate

# every subpackage kesu maps into its namespace; a user's folder of the same name must not win
SHADOWED = ("flows", "transforms", "expectations", "warehouse", "reports", "samplegen", "reference")


@pytest.mark.flow
def test_a_served_report_run_completes_from_a_directory_of_shadowing_folders(
    tmp_path: Path, monkeypatch, demo_key
):
    from kesu.flows.serve import deployments, locations
    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    generate(date(2025, 7, 1), date(2025, 7, 2), landing, profile="small", seed=5)
    for day in (date(2025, 7, 1), date(2025, 7, 2)):
        nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=str(warehouse))

    work = tmp_path / "team"
    for name in SHADOWED:  # each one a package that breaks any import that reaches it
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text(f"raise ImportError('user folder {name}/')\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("KESU_REPORTS", "./reports")
    where = locations(landing=str(landing), warehouse=str(warehouse))
    served = {d.flow_name: d for d in deployments(where)}["report"]
    assert served.entrypoint == "kesu.flows.report.report"
    served.apply()

    run = run_deployment(
        f"report/{served.name}",
        parameters={"kind": "quarterly", "period": "2025Q3"},
        timeout=0,  # only create the run: the engine below executes it
    )
    env = os.environ | {
        "PREFECT__FLOW_RUN_ID": str(run.id),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    env.pop("PYTHONPATH", None)
    # `python -m` puts the working directory first on sys.path, as a served run's process does
    done = subprocess.run(
        [sys.executable, "-m", "prefect.engine"], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.type == StateType.COMPLETED, state
    tables = work / "reports" / "quarterly" / "2025Q3" / "tables"
    assert pl.read_parquet(tables / "overview.parquet").height > 0
