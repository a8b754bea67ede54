"""The dbt unit tests (models/**/*unit_tests.yml), run by real dbt; the monthly build excludes them.

dbt reads the column types of a unit test's inputs from the warehouse, so one real month is built first.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.paths import DBT_PROJECT_DIR

pytestmark = pytest.mark.e2e


def test_dbt_unit_tests_pass(feature_store, tmp_path):
    assert main(["materialize", "--from", "2023-01", "--to", "2023-01"]) == 0
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "test",
            "--select",
            "test_type:unit",
            "--log-path",
            str(tmp_path),
            "--target-path",
            str(tmp_path / "target"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **feature_store.settings.as_env()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASS client_features::client_features_windows_ties_and_eligibility" in result.stdout
    assert "PASS client_features::client_features_last_purchase_from_previous_snapshot" in result.stdout
    assert "PASS inclinic_transactions::inclinic_transactions_count_each_transaction_once" in result.stdout
    assert "PASS rejected_rows::rejected_rows_list_each_rejected_key_once" in result.stdout
