from pathlib import Path

import pytest

from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME, ConfigurationError, Settings


def test_defaults_follow_the_contract_and_resolve_against_the_working_directory(tmp_path):
    settings = Settings.from_env({}, cwd=tmp_path)
    assert settings.raw_dir == tmp_path / "data" / "raw"
    assert settings.warehouse == tmp_path / "data" / "warehouse.duckdb"
    assert settings.analytics == tmp_path / "data" / "analytics.duckdb"
    assert settings.zip_income == SAMPLE_ZIP_INCOME and SAMPLE_ZIP_INCOME.exists()
    assert settings.start_month == "2023-01" and settings.start_date == "2023-01-01"


def test_environment_overrides_and_absolute_paths_for_dbt(tmp_path):
    settings = Settings.from_env(
        {
            "FEATURE_STORE_RAW_DIR": "lz",
            "FEATURE_STORE_WAREHOUSE": "/abs/wh.duckdb",
            "FEATURE_STORE_START_MONTH": "2021-07",
        },
        cwd=tmp_path,
    )
    env = settings.as_env()
    assert env["FEATURE_STORE_RAW_DIR"] == str(tmp_path / "lz")
    assert env["FEATURE_STORE_WAREHOUSE"] == "/abs/wh.duckdb"
    assert env["FEATURE_STORE_START_MONTH"] == "2021-07"
    assert all(
        Path(env[k]).is_absolute()
        for k in (
            "FEATURE_STORE_RAW_DIR",
            "FEATURE_STORE_WAREHOUSE",
            "FEATURE_STORE_ZIP_INCOME",
            "FEATURE_STORE_ANALYTICS",
        )
    )


def test_bad_start_month_is_named():
    with pytest.raises(ConfigurationError, match="2023-1'"):
        Settings.from_env({"FEATURE_STORE_START_MONTH": "2023-1"})


def test_quality_mode_defaults_to_enforce_and_rejects_unknown_modes():
    assert Settings.from_env({}).quality_mode == "enforce"
    assert Settings.from_env({"FEATURE_STORE_QUALITY_MODE": "warn"}).as_env()["FEATURE_STORE_QUALITY_MODE"] == "warn"
    with pytest.raises(ConfigurationError, match="'lenient'"):
        Settings.from_env({"FEATURE_STORE_QUALITY_MODE": "lenient"})


def test_duckdb_memory_limit_has_one_default_for_python_and_dbt(monkeypatch, tmp_path):
    import yaml

    from feature_store_assets.core.paths import DBT_PROJECT_DIR
    from feature_store_assets.core.settings import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV
    from feature_store_assets.warehouse.connections import connect

    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    limit = yaml.safe_load(profile)["feature_store"]["outputs"]["duckdb"]["settings"]["memory_limit"]
    assert limit == f"{{{{ env_var('{MEMORY_LIMIT_ENV}', '{DEFAULT_MEMORY_LIMIT}') }}}}"
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GB")
    with connect(tmp_path / "w.duckdb") as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] in (
            "953.6 MiB",
            "1.0 GiB",
            "1000.0 MB",
        )


def test_the_dbt_target_and_spark_folder_reach_dbt_as_absolute_settings(tmp_path):
    default = Settings.from_env({}, cwd=tmp_path)
    assert (default.dbt_target, default.on_spark, default.spark_dir) == ("duckdb", False, tmp_path / "data" / "spark")
    spark = Settings.from_env({"FEATURE_STORE_DBT_TARGET": "spark", "FEATURE_STORE_SPARK_DIR": "sp"}, cwd=tmp_path)
    assert spark.on_spark
    assert spark.as_env()["FEATURE_STORE_SPARK_DIR"] == str(tmp_path / "sp")
    assert spark.as_env()["FEATURE_STORE_DBT_TARGET"] == "spark"


def test_every_setting_is_read_validated_and_handed_on_once(tmp_path):
    from dataclasses import fields

    from feature_store_assets.core.resources import FeatureStoreResource

    defaults = Settings.from_env({}, cwd=tmp_path)
    assert (defaults.log_format, defaults.duckdb_memory_limit, defaults.max_rows_per_dbt_build) == (
        "text",
        "1500MB",
        40_000_000,
    )
    env = {
        "FEATURE_STORE_LOG_FORMAT": " JSON",
        "FEATURE_STORE_DUCKDB_MEMORY_LIMIT": "1GB",
        "FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD": "7",
    }
    settings = Settings.from_env(env, cwd=tmp_path)
    assert (settings.log_format, settings.duckdb_memory_limit, settings.max_rows_per_dbt_build) == ("json", "1GB", 7)
    # as_env and the Dagster resource carry every field but the secrets (the API key, the online store's URL) and
    # the store folder, whose default follows the analytics file, and give the same settings back
    assert set(settings.as_env()) == {
        f.metadata["setting"].env
        for f in fields(Settings)
        if f.name not in ("api_key", "online_store", "published_dir")
    }
    assert Settings.from_env(settings.as_env(), cwd=tmp_path) == settings
    assert FeatureStoreResource.from_settings(settings).settings == settings
    for name, value, shown in (
        ("FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD", "0", "'0'"),
        ("FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD", "many", "'many'"),
        ("FEATURE_STORE_LOG_FORMAT", "xml", "'xml'"),
    ):
        with pytest.raises(ConfigurationError, match=f"{name} must .* got {shown}"):
            Settings.from_env({name: value}, cwd=tmp_path)


def test_the_api_key_stays_out_of_dbts_environment_and_the_runs_config(tmp_path):
    """The pipeline never needs the serving API key: it is not in as_env (dbt's environment) nor in the Dagster
    resource's config (which the UI shows with every run)."""
    from feature_store_assets.core.resources import FeatureStoreResource

    settings = Settings.from_env({"FEATURE_STORE_API_KEY": "s3cret-key"}, cwd=tmp_path)
    assert settings.resolved_api_key() == "s3cret-key"
    assert "s3cret-key" not in repr(settings)
    assert "s3cret-key" not in str(settings.as_env())
    resource = FeatureStoreResource.from_settings(settings)
    assert "s3cret-key" not in str(resource.model_dump())
    assert resource.settings.warehouse == settings.warehouse


def test_the_online_store_is_a_redis_url_kept_secret(tmp_path):
    """FEATURE_STORE_ONLINE_STORE: unset is the in-memory store; a Redis URL is checked, and, as it may hold a
    password, stays out of printed settings, dbt's environment and the runs' config, and out of errors."""
    from feature_store_assets.core.resources import FeatureStoreResource
    from feature_store_assets.core.settings import redacted_url

    assert Settings.from_env({}, cwd=tmp_path).online_store == ""
    url = "redis://:s3cret@redis.internal:6380/2"
    settings = Settings.from_env({"FEATURE_STORE_ONLINE_STORE": url}, cwd=tmp_path)
    assert settings.online_store == url
    assert redacted_url(url) == "redis://:***@redis.internal:6380/2"
    assert redacted_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    for shown in (
        repr(settings),
        str(settings.as_env()),
        str(FeatureStoreResource.from_settings(settings).model_dump()),
    ):
        assert "s3cret" not in shown and "redis.internal" not in shown
    for value, problem in (
        ("http://redis.internal:6379", "its scheme must be one of redis://"),
        ("redis://:s3cret@host/x", "its database 'x' is not a number"),
        ("redis:///0", "it names no host"),
    ):
        with pytest.raises(ConfigurationError, match=problem) as raised:
            Settings.from_env({"FEATURE_STORE_ONLINE_STORE": value}, cwd=tmp_path)
        assert "FEATURE_STORE_ONLINE_STORE=" in str(raised.value) and "s3cret" not in str(raised.value)


def test_release_freed_memory_hands_back_what_arrow_and_pandas_freed():
    """Before dbt starts, the step's process returns freed memory to the OS, so it does not sit under dbt's peak."""
    import psutil
    import pyarrow as pa

    from feature_store_assets.core.memory import release_freed_memory

    process = psutil.Process()
    release_freed_memory()
    before = process.memory_info().rss
    frame = pa.array([f"client-{i:09d}" for i in range(6_000_000)]).to_pandas()  # like a reference step's frames
    assert process.memory_info().rss - before > 100 * 2**20
    del frame
    held = process.memory_info().rss
    release_freed_memory()
    assert held - process.memory_info().rss > 100 * 2**20, "the freed frame stayed resident"
