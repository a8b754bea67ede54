"""Any path works (issue 12): a landing zone, warehouse, analytics file and ZIP income file whose paths hold
a quote, a double quote, a space and non-ASCII letters go through the whole pipeline, Python and dbt macros alike.

The run's features are compared with the pandas reference (reference_features) computed from the same landing
zone at its plain path, so a file the odd path made the pipeline miss shows up as missing rows or values.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from feature_store_assets.core.resources import DuckDBFile
from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.defs.reference.assets import export_for_spark
from feature_store_assets.generator import generate_landing_zone
from feature_store_assets_tests.conftest import SMALL_ZONE, configure
from feature_store_assets_tests.support.reference_features import compute_client_features
from feature_store_assets_tests.test_client_features import feature_differences, month_rows, read_features

pytestmark = pytest.mark.e2e

# Every character SQL string literals and identifiers quote: ', ", a space, and letters outside ASCII.
ODD_FOLDER = Path("o'brien dir") / 'données "x"'
MONTHS = ("2023-01", "2023-02")


def odd_zip_income(root: Path) -> Path:
    zip_income = root / f"zip income d'où {SAMPLE_ZIP_INCOME.name}"
    zip_income.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE_ZIP_INCOME, zip_income)
    return zip_income


@pytest.fixture
def odd_store(tmp_path, small_landing_zone, monkeypatch):
    root = tmp_path / ODD_FOLDER
    raw_dir = root / "landing zone l'été"
    shutil.copytree(small_landing_zone, raw_dir)
    return configure(monkeypatch, root, raw_dir, start_month=MONTHS[0], zip_income=odd_zip_income(root))


def test_generator_writes_the_same_landing_zone_under_such_a_folder(tmp_path, small_landing_zone):
    raw_dir = tmp_path / ODD_FOLDER / "raw"
    generate_landing_zone(raw_dir, SMALL_ZONE, zip_income_csv=odd_zip_income(tmp_path / ODD_FOLDER))
    files = sorted(path.relative_to(small_landing_zone) for path in small_landing_zone.rglob("*.parquet"))
    assert files and sorted(path.relative_to(raw_dir) for path in raw_dir.rglob("*.parquet")) == files
    for file in files:
        pd.testing.assert_frame_equal(pd.read_parquet(raw_dir / file), pd.read_parquet(small_landing_zone / file))


def test_materialize_and_publish_under_a_folder_with_quotes_spaces_and_accents(odd_store, small_landing_zone):
    from feature_store_assets.cli.main import main

    settings = odd_store.settings
    assert "'" in str(settings.warehouse) and '"' in str(settings.analytics) and "é" in str(settings.raw_dir)
    assert main(["materialize", "--from", MONTHS[0], "--to", MONTHS[-1]]) == 0

    published = read_features(settings.analytics)
    for month in MONTHS:
        expected = compute_client_features(small_landing_zone, SAMPLE_ZIP_INCOME, month, MONTHS[0])
        assert len(expected) > 0
        problems = feature_differences(month_rows(published, month), expected)
        assert not problems, f"{month}: published features vs reference\n" + "\n".join(problems)
    assert len(published) == odd_store.scalar("select count(*) from features.client_features")
    assert odd_store.scalar("select count(*) from reference.zip_income") > 0

    # The Spark target's copy of the reference table (written by DuckDB; no Spark needed) takes such a path too.
    spark_dir = settings.warehouse.parent / "spark l'été"
    folder = export_for_spark(DuckDBFile(database=str(settings.warehouse)), "client_zip_income", spark_dir)
    exported = pd.read_parquet(folder)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert len(exported) == con.execute("select count(*) from reference.client_zip_income").fetchone()[0] > 0
