"""`python -m benchmarks.publish --scale tiny` end to end in a temp folder: a real one-month run as its template,
every month published by the real publish step, and its JSON with every field the docs quote. No timing is
asserted: the benchmark reports its targets (docs/performance.md)."""

from __future__ import annotations

import json

import pytest

from benchmarks.publish import SCALES, main
from benchmarks.run import Row
from feature_store_assets.core.names import FEATURES_TABLE
from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.defs.publish.analytics import monthly_tables
from feature_store_assets.store import PUBLISHED_SCHEMAS

pytestmark = pytest.mark.e2e


def test_tiny_publish_benchmark_publishes_every_month_and_writes_its_figures(tmp_path):
    out = tmp_path / "publish.json"
    assert main(["--scale", "tiny", "--workdir", str(tmp_path / "work"), "--out", str(out)]) == 0
    text = out.read_text()
    results = json.loads(text)
    scale = SCALES["tiny"]

    assert str(tmp_path) not in text  # relative paths only
    months = results["months"]
    assert list(months) == [f"2023-{m:02d}" for m in range(1, scale.months + 1)]
    # one store version per month, each publishing only its month (the child checks the months it wrote)
    assert [m["store_version"] for m in months.values()] == list(range(1, scale.months + 1))
    assert all(m["seconds"] > 0 and m["cpu_seconds"] > 0 and m["peak_rss_gib"] > 0 for m in months.values())

    # the tables come from the template and the manifest: every monthly model of a published schema, scaled
    monthly = {f"{s}.{t}" for (s, t) in monthly_tables(load_manifest()) if s in PUBLISHED_SCHEMAS}
    tables = results["tables"]
    assert {name for name, table in tables.items() if table["month_column"]} == monthly
    features = results["production_shape"]["client_feature_rows"] * scale.fraction
    assert tables[FEATURES_TABLE]["rows"] == round(features)

    disk = results["disk_bytes"]
    assert disk["current_data"] > 0
    assert disk["older_versions_only"] > 0  # the tables rewritten whole keep the kept older version's files
    assert disk["unreferenced"] == 0  # vacuumed: nothing no kept version reads
    assert disk["total"] == sum(v for k, v in disk.items() if k != "total")

    figures = {row["figure"]: Row(**row) for row in results["results"]}
    ratio = figures[f"publish: month {scale.months} / month 2"]
    assert ratio.target == "<= 1.1" and ratio.met == (ratio.value <= 1.1)
    assert ratio.value == pytest.approx(months["2023-04"]["seconds"] / months["2023-02"]["seconds"])
    pairs = results["pairs"]  # month 2 again on the store as it found it, then month 5 on the whole history
    assert [p["store_version"] for p in pairs["month_2"]] == [2] * scale.pairs
    assert [p["store_version"] for p in pairs["history"]] == list(range(5, 5 + scale.pairs))
    assert figures[f"publish CPU time: paired, on {scale.months}+ months / month 2"].target == "<= 1.1"
    share = figures["store on disk / current data"]
    assert share.value == pytest.approx(disk["total"] / disk["current_data"]) and share.target == "<= 1.3"
    assert "peak RSS of a publishing process" in figures
    assert not (tmp_path / "work" / "published").exists()  # the scaled store is removed afterwards
