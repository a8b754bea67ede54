"""Fourteen generated months in one run: the 12-month window drops its oldest months, as docs/features.md says."""

import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.generator import GeneratorOptions, generate_landing_zone
from feature_store_assets_tests.conftest import configure
from feature_store_assets_tests.support.reference_features import compute_client_features
from feature_store_assets_tests.test_client_features import feature_differences, month_rows

pytestmark = pytest.mark.e2e

LONG_ZONE = GeneratorOptions(
    start_month="2023-01", months=14, clinics=6, clients=400, inclinic_rows_per_month=1_500, seed=11
)


@pytest.fixture(scope="module")
def long_history(tmp_path_factory):
    root = tmp_path_factory.mktemp("long_history")
    generate_landing_zone(root / "raw", LONG_ZONE, zip_income_csv=SAMPLE_ZIP_INCOME)
    with pytest.MonkeyPatch.context() as monkeypatch:
        store = configure(monkeypatch, root, root / "raw")
        assert main(["materialize", "--from", "2023-01", "--to", "2024-02"]) == 0
        yield store


@pytest.mark.parametrize("month", ["2023-12", "2024-01", "2024-02"])
def test_months_past_a_full_window_equal_the_reference(long_history, month):
    pipeline = long_history.query("select * from features.client_features order by feature_month, client_id")
    expected = compute_client_features(long_history.raw_dir, SAMPLE_ZIP_INCOME, month, "2023-01")
    problems = feature_differences(month_rows(pipeline, month).reset_index(drop=True), expected)
    assert not problems, "\n".join(problems)


def test_the_window_really_drops_old_months(long_history):
    # 2024-02's 12m window starts 2023-03: some client's 12m revenue must differ from its all-history revenue
    dropped = long_history.scalar(
        """
        select count(*) from features.client_features f
        join (select client_id, sum(inclinic_revenue) as all_history from aggregation.client_monthly_financials
              where activity_month <= date '2024-02-01' group by 1) h using (client_id)
        where f.feature_month = date '2024-02-01' and abs(f.inclinic_revenue_12m - h.all_history) > 0.005
        """
    )
    assert dropped > 0
