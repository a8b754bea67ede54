"""Point-in-time training sets on really published months 2023-01..2023-03 of the small landing zone."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from feature_store_assets.serving.catalog import load_catalog
from feature_store_assets.serving.published import ServingError, UnknownFeatures
from feature_store_assets.serving.training import get_training_features
from feature_store_assets_tests.support.serving import analytics_query, materialize, published_store
from feature_store_assets_tests.support.shared import published_copy

# one worker per module: its module-scoped materialization runs once
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("serving_training")]

US = pd.Timedelta(microseconds=1)
JAN, FEB, MAR = (pd.Timestamp(m) for m in ("2023-01-01", "2023-02-01", "2023-03-01"))
E_JAN, E_FEB, E_MAR = FEB, MAR, pd.Timestamp("2023-04-01")  # E: the first day of the month after


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_training")


@pytest.fixture(scope="module")
def published(store) -> pd.DataFrame:
    return analytics_query(store.settings, "select * from features.client_features")


@pytest.fixture(scope="module")
def steady_client(published) -> int:
    """A client with a snapshot in each of the three months."""
    months = published.groupby("client_id")["feature_month"].nunique()
    return int(months[months == 3].index[0])


def training(store, entities, *args, **kwargs) -> pd.DataFrame:
    return get_training_features(pd.DataFrame(entities), *args, analytics=store.settings.analytics, **kwargs)


def plain(values: pd.Series) -> list:
    """Comparable values: None for every kind of missing (NaN, NA)."""
    return [None if pd.isna(v) else v for v in values]


def snapshot(published, client_id, month) -> pd.Series:
    return published[(published.client_id == client_id) & (published.feature_month == month)].iloc[0]


def test_an_event_at_exactly_e_sees_that_month_and_one_microsecond_earlier_the_month_before(
    store, published, steady_client
):
    events = [E_JAN - US, E_JAN, E_FEB - US, E_FEB, E_MAR - US, E_MAR, E_MAR + pd.Timedelta(days=400)]
    rows = training(store, {"client_id": [steady_client] * len(events), "event_timestamp": events})
    assert rows["feature_month"].tolist()[0] is pd.NaT  # nothing ended before 2023-02-01
    assert rows["feature_month"].iloc[1:].tolist() == [JAN, JAN, FEB, FEB, MAR, MAR]
    features = load_catalog(store.settings.analytics).names
    for i, month in ((1, JAN), (3, FEB), (5, MAR)):
        expected = snapshot(published, steady_client, month)[features]
        assert plain(rows.loc[i, features]) == pytest.approx(plain(expected))


def test_nanoseconds_before_e_still_see_the_month_before(store, steady_client):
    rows = training(store, {"client_id": [steady_client], "event_timestamp": [E_FEB - pd.Timedelta(nanoseconds=1)]})
    assert rows["feature_month"].tolist() == [JAN]


def test_max_age_months_drops_older_snapshots(store, steady_client):
    # The latest snapshot is March (E = 2023-04-01): 0 months old in April, 2 in June.
    events = {
        "client_id": [steady_client] * 3,
        "event_timestamp": pd.to_datetime(["2023-04-30 23:59", "2023-05-01", "2023-06-15"], format="ISO8601"),
    }
    assert training(store, events)["feature_month"].tolist() == [MAR, MAR, MAR]
    assert training(store, events, max_age_months=2)["feature_month"].tolist() == [MAR, MAR, MAR]
    one = training(store, events, ["tenure_days"], max_age_months=1)
    assert one["feature_month"].tolist()[:2] == [MAR, MAR] and one["feature_month"].isna().tolist() == [
        False,
        False,
        True,
    ]
    assert one["tenure_days"].isna().tolist() == [False, False, True]
    assert training(store, events, max_age_months=0)["feature_month"].isna().tolist() == [False, True, True]
    with pytest.raises(ServingError, match="max_age_months"):
        training(store, events, max_age_months=-1)


def test_rows_come_back_in_input_order_with_duplicates_and_labels_kept(store, published):
    rng = np.random.default_rng(5)
    clients = published["client_id"].unique()
    entities = pd.DataFrame(
        {
            "client_id": rng.choice(clients, 500),
            "event_timestamp": pd.Timestamp("2023-02-01") + pd.to_timedelta(rng.integers(0, 80 * 86400, 500), unit="s"),
            "label": rng.integers(0, 2, 500),
        },
        index=pd.Index(rng.permutation(np.arange(1000, 1500)), name="example"),
    )
    entities = pd.concat([entities, entities.iloc[:50]])  # duplicate rows, duplicate index labels
    rows = training(store, entities, ["total_revenue_12m"])
    assert len(rows) == len(entities)
    assert rows.index.equals(entities.index)
    pd.testing.assert_frame_equal(rows[entities.columns], entities)
    assert rows.iloc[-50:].reset_index(drop=True).equals(rows.iloc[:50].reset_index(drop=True))
    # each row's snapshot is the latest month whose E is at or before its event
    expected_month = rows["event_timestamp"].dt.to_period("M").dt.to_timestamp() - pd.offsets.MonthBegin(1)
    has = rows["feature_month"].notna()
    assert (rows.loc[has, "feature_month"] <= expected_month[has]).all()
    assert (rows.loc[has, "feature_month"] + pd.offsets.MonthBegin(1) <= rows.loc[has, "event_timestamp"]).all()
    lookup = published.set_index(["client_id", "feature_month"])["total_revenue_12m"]
    keys = list(zip(rows.loc[has, "client_id"], rows.loc[has, "feature_month"]))
    assert rows.loc[has, "total_revenue_12m"].tolist() == pytest.approx(lookup.loc[keys].tolist())


def test_unknown_and_missing_entities_get_nulls_not_errors(store, steady_client):
    rows = training(
        store,
        {"client_id": [999_999_999, None, steady_client], "event_timestamp": [E_MAR, E_MAR, None]},
        ["tenure_days", "zip_code"],
    )
    assert rows["feature_month"].isna().all()
    assert rows["tenure_days"].isna().all() and rows["zip_code"].isna().all()
    assert list(rows.columns) == ["client_id", "event_timestamp", "feature_month", "tenure_days", "zip_code"]


def test_requests_the_store_cannot_answer_say_why(store, steady_client):
    ok = {"client_id": [steady_client], "event_timestamp": [E_MAR]}
    with pytest.raises(UnknownFeatures, match="Valid features: tenure_days"):
        training(store, ok, ["tenure_days", "churn_score"])
    with pytest.raises(ServingError, match="event_timestamp"):
        training(store, {"client_id": [steady_client]})
    with pytest.raises(ServingError, match="naive"):
        training(store, {"client_id": [steady_client], "event_timestamp": [E_MAR.tz_localize("UTC")]})
    with pytest.raises(ServingError, match="tenure_days"):
        training(store, {**ok, "tenure_days": [1]})


def test_string_timestamps_and_dates_are_read_as_naive_times(store, steady_client):
    rows = training(
        store, {"client_id": [steady_client] * 2, "event_timestamp": ["2023-03-01", "2023-02-28T23:59:59.999999"]}
    )
    assert rows["feature_month"].tolist() == [FEB, JAN]


def test_a_million_labelled_rows_in_seconds(store, published):
    rng = np.random.default_rng(3)
    n = 1_000_000
    entities = pd.DataFrame(
        {
            "client_id": rng.choice(published["client_id"].unique(), n),
            "event_timestamp": pd.Timestamp("2023-01-15") + pd.to_timedelta(rng.integers(0, 120 * 86400, n), unit="s"),
        }
    )
    began = time.perf_counter()
    rows = training(store, entities)
    assert len(rows) == n and rows["feature_month"].notna().mean() > 0.5
    assert time.perf_counter() - began < 30  # about 2 s here; generous for a loaded 2-core machine


def test_cli_writes_a_training_set(store, steady_client, tmp_path, monkeypatch, capsys):
    from feature_store_assets.cli.main import main

    monkeypatch.setenv("FEATURE_STORE_ANALYTICS", str(store.settings.analytics))
    entities = tmp_path / "labels.csv"
    entities.write_text(
        f"client_id,event_timestamp,churned\n{steady_client},2023-03-01T00:00:00,1\n{steady_client},2023-02-28 23:59:59.999999,0\n"
    )
    out = tmp_path / "out" / "training.parquet"
    assert main(["training", "--entities", str(entities), "--out", str(out), "--features", "tenure_days,zip_code"]) == 0
    rows = pd.read_parquet(out)
    assert list(rows.columns) == ["client_id", "event_timestamp", "churned", "feature_month", "tenure_days", "zip_code"]
    assert rows["feature_month"].tolist() == [FEB, JAN] and rows["churned"].tolist() == [1, 0]
    assert "2 rows (2 with a snapshot, 0 without)" in capsys.readouterr().out
    assert main(["training", "--entities", str(entities), "--out", str(out), "--features", "nope"]) == 1


def test_a_pinned_training_set_is_rebuilt_as_it_was_after_a_month_is_republished(tmp_path, small_landing_zone):
    raw_dir = tmp_path / "raw"
    shutil.copytree(small_landing_zone, raw_dir)
    store = published_store(tmp_path / "store", raw_dir, "2023-01", "2023-02")
    clients = analytics_query(store.settings, "select distinct client_id from features.client_features")["client_id"]
    entities = {"client_id": clients.tolist(), "event_timestamp": [E_FEB] * len(clients)}
    built = training(store, entities)
    version = built.attrs["feature_store_version"]
    assert isinstance(version, int) and built["feature_month"].eq(FEB).all()

    # February's in-clinic revenue doubles in the landing zone, and February is materialized and published again
    for part in (raw_dir / "transactions_inclinic" / "month=2023-02").glob("*.parquet"):
        table = pq.read_table(part)
        revenue = table.schema.field("revenue").type
        doubled = pc.multiply(table["revenue"], pa.scalar(2, revenue)).cast(revenue)
        pq.write_table(table.set_column(table.schema.get_field_index("revenue"), "revenue", doubled), part)
    materialize(store, "2023-02", "2023-02")

    pinned = training(store, entities, version=version)
    pd.testing.assert_frame_equal(pinned, built)
    assert pinned.attrs["feature_store_version"] == version
    current = training(store, entities)
    assert current.attrs["feature_store_version"] > version
    assert current["inclinic_revenue_1m"].sum() == pytest.approx(2 * built["inclinic_revenue_1m"].sum())
    with pytest.raises(ServingError, match="no version 999"):
        training(store, entities, version=999)
