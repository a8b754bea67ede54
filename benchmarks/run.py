"""Benchmarks at production shape, side by side with their lower bound and peers (docs/performance.md).

    python -m benchmarks.run --quick              # about two minutes once Feast's venv exists (a smoke run)
    python -m benchmarks.run --scale medium       # ~10M raw rows a month, 6 months: under 15 minutes on 2 cores
    python -m benchmarks.run --scale full         # 20M in-clinic rows a month, 24 months (see docs/performance.md)

Prints a table and writes JSON (machine, package versions, every figure with its target) to --out.
Each step runs in a child process whose whole process tree is sampled for its peak resident set.
Targets are measured and reported here, never asserted in unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks.feast_env import feast_python
from benchmarks.measure import Measured, machine, python_module, run_measured
from benchmarks.pipeline import PipelineScale, Store, generate, materialize, month, raw_rows, warm_page_cache
from benchmarks.serving import entity_rows, export_snapshots, synthetic_analytics
from feature_store_assets.defs.dbt.invocation import environment
from feature_store_assets.defs.dbt.project import prepare_manifest
from feature_store_assets.warehouse.connections import memory_limit

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scale:
    pipeline: PipelineScale
    serving_clients: int
    serving_months: int
    training_rows: int
    lookups: int  # in-process single-client lookups
    http_lookups: int  # HTTP requests from the client process
    feast_lookups: int  # Feast online lookups


# inclinic rows a month, clients, clinics, months, backfill months | serving: clients, training rows,
# in-process lookups, HTTP lookups, Feast lookups (24 snapshot months at every scale)
SCALES = {
    name: Scale(PipelineScale(rows, clients, clinics, months, backfill), serving, 24, training, lookups, http, feast)
    for name, (rows, clients, clinics, months, backfill, serving, training, lookups, http, feast) in {
        "quick": (100_000, 10_000, 40, 3, 1, 5_000, 10_000, 10_000, 300, 200),
        # about 10M raw rows a month for 6 months: a developer's check of a change, under 15 minutes on 2 cores
        "medium": (5_200_000, 700_000, 700, 6, 2, 200_000, 1_000_000, 30_000, 1_000, 500),
        "full": (20_000_000, 2_000_000, 2_000, 24, 12, 200_000, 1_000_000, 100_000, 3_000, 2_000),
    }.items()
}


@dataclass
class Row:
    """One line of the table: a figure, what it is compared with, and its target."""

    item: str
    figure: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    against: str = ""

    def line(self) -> str:
        verdict = {True: "yes", False: "NO", None: ""}[self.met]
        return f"{self.item:<4} {self.figure:<58} {self.value:>12,.3f} {self.unit:<6} {self.target:<16} {verdict:<4} {self.against}"


class Report:
    def __init__(self, scale_name: str, scale: Scale):
        self.rows: list[Row] = []
        self.details: dict = {
            "scale": scale_name,
            "shape": asdict(scale),
            "machine": machine(),
            "duckdb_memory_limit": memory_limit(),
            "started": datetime.now().isoformat(timespec="seconds"),
        }

    out: Path | None = None  # written after every figure, so an interrupted run keeps what it measured

    def add(self, *args, **kwargs) -> None:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        print(row.line(), flush=True)
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps(self.json(), indent=2, default=str) + "\n")

    def table(self) -> str:
        header = f"{'item':<4} {'figure':<58} {'value':>12} {'unit':<6} {'target':<16} {'met':<4} compared with"
        return "\n".join([header, "-" * len(header), *(row.line() for row in self.rows)])

    def json(self) -> dict:
        return {
            **self.details,
            "finished": datetime.now().isoformat(timespec="seconds"),
            "total_seconds": self.details.get("total_seconds", 0.0),
            "results": [asdict(r) for r in self.rows],
        }


def step_seconds(run_output: str, step_label: str) -> float | None:
    """A step's seconds from `feature-store materialize`'s summary (`  publish/analytics_database  ok  1.6s ...`)."""
    for line in run_output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == step_label and parts[2].endswith("s"):
            try:
                return float(parts[2].removesuffix("s"))
            except ValueError:
                continue
    return None


PUBLISH_STEP = "publish/analytics_database"

LOGS: list[Path] = []  # where step() keeps each step's output (set by main)


def step(label: str, measured: Measured) -> Measured:
    """Print a step's figures and keep its output (dbt's per-model timings, for profiling) in the work folder."""
    print(
        f"  {label}: {measured.seconds:.1f} s, peak RSS {measured.peak_rss_gib:.2f} GiB {measured.peak_breakdown_gib}",
        flush=True,
    )
    if LOGS:
        LOGS[0].mkdir(parents=True, exist_ok=True)
        (LOGS[0] / f"{label.replace(' ', '_')}.log").write_text(measured.stdout)
    return measured


def published_month_totals(store: Store, month_label: str) -> tuple[int, float]:
    with duckdb.connect(str(store.analytics), read_only=True) as con:
        rows, revenue = con.execute(
            "select count(*), sum(inclinic_revenue + hd_revenue) from aggregation.client_monthly_financials "
            f"where activity_month = date '{month_label}-01'"
        ).fetchone()
    return rows, float(revenue or 0)


def pipeline_benchmarks(report: Report, scale: Scale, workdir: Path, reuse: bool) -> Store:
    shape = scale.pipeline
    store = Store(workdir / "store")
    marker = store.root / "landing-zone.json"
    if reuse and marker.exists() and json.loads(marker.read_text()) == asdict(shape):
        print(f"reusing the landing zone in {store.raw_dir}")
        generation = store.root / "generation.json"
        if generation.exists():
            report.details["landing_zone"] = json.loads(generation.read_text())
    else:
        shutil.rmtree(store.root, ignore_errors=True)
        store.root.mkdir(parents=True)
        print(f"generating {shape.months} months of {shape.inclinic_rows_per_month:,} in-clinic rows ...", flush=True)
        seconds, counts = generate(store, shape)
        marker.write_text(json.dumps(asdict(shape)))
        report.details["landing_zone"] = {"seconds": seconds, "rows": counts}
        (store.root / "generation.json").write_text(json.dumps(report.details["landing_zone"]))
        print(f"  generated in {seconds:.0f} s: {counts}")
    for path in (store.warehouse, store.analytics):
        path.unlink(missing_ok=True)
    # parse the dbt project once, unmeasured, as a deployment does (`dagster-dbt project prepare-and-package`), under
    # the store's settings as the definitions parse it: otherwise the first measured run would pay for a whole parse
    # (dbt's profile names the warehouse, so a parse made for another one is not reused)
    with environment(store.env):
        prepare_manifest(force=True)
    first_rows = raw_rows(store, 1, 1)
    report.details["month_1_raw_rows"] = first_rows

    # 1. one month end to end, against the lower bound and a naive pandas job
    print("1. month 1 end to end through Dagster ...", flush=True)
    one = step("pipeline", materialize(store, 1, 1))
    warm_page_cache(store, 1, 1)  # the bound and the pandas job find the month in the page cache, as the pipeline did
    bound = step(
        "lower bound",
        run_measured(python_module("benchmarks.lower_bound", store.raw_dir, month(1), workdir / "lower_bound.duckdb")),
    )
    pandas_job = step(
        "naive pandas", run_measured(python_module("benchmarks.naive_pandas", store.raw_dir, month(1), store.analytics))
    )
    published = published_month_totals(store, month(1))
    agreement = {
        "lower_bound_rows": bound.report["rows"],
        "pipeline_rows": published[0],
        "lower_bound_revenue": bound.report["revenue"],
        "pipeline_revenue": published[1],
        "naive_pandas": pandas_job.report,
    }
    report.details["month_1_agreement"] = agreement
    total_raw = sum(first_rows.values())
    report.add("1", f"one month end to end ({total_raw / 1e6:.1f}M raw rows)", one.seconds, "s")
    report.add("1", "lower bound: one DuckDB query over the raw files", bound.report["seconds"], "s")
    ratio = one.seconds / bound.report["seconds"]
    report.add("1", "pipeline / lower bound", ratio, "x", "<= 2", ratio <= 2, "lower bound")
    report.add("7", "naive pandas job, same month (features only)", pandas_job.seconds, "s")
    speedup = pandas_job.seconds / one.seconds
    report.add("7", "pipeline faster than the naive pandas job", speedup, "x", ">= 2", speedup >= 2, "naive pandas")
    first_publish = step_seconds(one.stdout, PUBLISH_STEP)
    if first_publish is not None:
        report.add("1", "of which the publish step, month 1", first_publish, "s")
    report.details["peak_rss_gib_by_process"] = {"one_month": one.peak_breakdown_gib}
    report.add("4", "peak RSS, one month (process tree)", one.peak_rss_gib, "GiB", "<= 2.5", one.peak_rss_gib <= 2.5)
    report.add("4", "peak RSS, naive pandas job", pandas_job.peak_rss_gib, "GiB")

    # 3. backfill as one run
    last_backfill = 1 + shape.backfill_months
    print(f"3. backfill of months 2..{last_backfill} as one run ...", flush=True)
    backfill = step("backfill", materialize(store, 2, last_backfill))
    backfill_rows = sum(raw_rows(store, 2, last_backfill).values())
    report.add("3", f"backfill of {shape.backfill_months} months as one run", backfill.seconds, "s")
    report.add("3", "backfill raw rows per second", backfill_rows / backfill.seconds, "rows/s")
    ratio = backfill.seconds / (shape.backfill_months * one.seconds)
    report.add(
        "3", f"backfill / ({shape.backfill_months} x one month)", ratio, "x", "< 1", ratio < 1, "single-month runs"
    )
    report.details["peak_rss_gib_by_process"]["backfill"] = backfill.peak_breakdown_gib
    report.add("4", "peak RSS, backfill", backfill.peak_rss_gib, "GiB", "<= 2.5", backfill.peak_rss_gib <= 2.5)

    # 2. history independence: the last month after all the others
    # the months between, one run each, as the monthly schedule would build them
    history = {}
    for index in range(last_backfill + 1, shape.months):
        history[month(index)] = step(f"month {index} (history for item 2)", materialize(store, index, index)).seconds
    report.details["history_month_seconds"] = history
    print(f"2. month {shape.months} on {shape.months - 1} months of history ...", flush=True)
    last = step(f"month {shape.months}", materialize(store, shape.months, shape.months))
    last_raw = sum(raw_rows(store, shape.months, shape.months).values())
    report.add("2", f"month {shape.months} end to end ({last_raw / 1e6:.1f}M raw rows)", last.seconds, "s")
    # months differ in size (seasonality): compare time per raw row
    ratio = (last.seconds / last_raw) / (one.seconds / total_raw)
    report.add("2", f"month {shape.months} / month 1, per raw row", ratio, "x", "<= 1.1", ratio <= 1.1, "month 1")
    report.details["month_sizes"] = {"month_1_raw_rows": total_raw, f"month_{shape.months}_raw_rows": last_raw}
    warm_page_cache(store, shape.months, shape.months)
    last_bound = step(
        f"lower bound, month {shape.months}",
        run_measured(
            python_module("benchmarks.lower_bound", store.raw_dir, month(shape.months), workdir / "lower_bound.duckdb")
        ),
    )
    ratio = last.seconds / last_bound.report["seconds"]
    windows = "full 12-month windows" if shape.months >= 12 else f"{shape.months}-month windows"
    report.add("2", f"month {shape.months} ({windows}), pipeline / lower bound", ratio, "x", "<= 2.5", ratio <= 2.5)
    last_publish = step_seconds(last.stdout, PUBLISH_STEP)
    if last_publish is not None:
        report.add("2", f"of which the publish step, month {shape.months}", last_publish, "s")
    if history:  # month 1's 12-month windows hold 1 month; compare with the first single-month run after the backfill
        index = last_backfill + 1
        index_raw = sum(raw_rows(store, index, index).values())
        ratio = (last.seconds / last_raw) / (history[month(index)] / index_raw)
        report.add(
            "2",
            f"month {shape.months} / month {index} end to end, per raw row",
            ratio,
            "x",
            "<= 1.05",
            ratio <= 1.05,
            f"month {index}: {history[month(index)]:.1f} s",
        )
    return store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compare_training(ours: Path, feast: Path) -> dict:
    """Values of the rows both returned, column by column: max absolute difference and NULL mismatches."""
    mine = pd.read_parquet(ours).set_index("row_id")
    theirs = pd.read_parquet(feast).set_index("row_id")
    common = mine.index.intersection(theirs.index)
    columns = [c for c in theirs.columns if c in mine.columns and c != "client_id"]
    worst, null_mismatches = 0.0, 0
    for column in columns:
        a, b = mine.loc[common, column], theirs.loc[common, column]
        null_mismatches += int((a.isna() != b.isna()).sum())
        both = a.notna() & b.notna()
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            worst = max(
                worst, float(np.abs(a[both].astype(float) - b[both].astype(float)).max() if both.any() else 0.0)
            )
        else:
            null_mismatches += int((a[both].astype(str) != b[both].astype(str)).sum())
    no_snapshot = int(mine["feature_month"].isna().sum())
    return {
        "rows_ours": len(mine),
        "rows_feast": len(theirs),
        "rows_compared": len(common),
        "columns_compared": len(columns),
        "ours_without_snapshot": no_snapshot,
        "max_abs_difference": worst,
        "mismatches": null_mismatches,
        "agree": worst <= 1e-9 and null_mismatches == 0,
    }


def serving_benchmarks(report: Report, scale: Scale, workdir: Path, store: Store, feast: bool) -> None:
    served = workdir / "serving"
    shutil.rmtree(served, ignore_errors=True)
    served.mkdir(parents=True)
    analytics = synthetic_analytics(
        store.analytics, served / "analytics.duckdb", scale.serving_clients, scale.serving_months
    )
    entities = served / "entities.parquet"
    entity_rows(scale.serving_clients, scale.serving_months, scale.training_rows).to_parquet(entities)
    label = (
        f"{scale.training_rows / 1e6:g}M rows x {scale.serving_months} snapshots of {scale.serving_clients:,} clients"
    )

    print(f"5. training retrieval, {label} ...", flush=True)
    ours = step(
        "ours",
        run_measured(python_module("benchmarks.serving", "training", analytics, entities, served / "ours.parquet")),
    )
    seconds = ours.report["seconds"]
    report.add("5", f"training retrieval, {label}", seconds, "s", "<= 1", seconds <= 1)
    report.add("5", "peak RSS, training retrieval", ours.peak_rss_gib, "GiB")

    print("6. online lookup ...", flush=True)
    online = step("in-process", run_measured(python_module("benchmarks.serving", "online", analytics, scale.lookups)))
    report.add("6", f"in-process lookup p50 ({scale.lookups:,} single clients)", online.report["p50_us"], "µs")
    report.add("6", "in-process lookup p99", online.report["p99_us"], "µs", "<= 50", online.report["p99_us"] <= 50)
    refresh = online.report["refresh_seconds"]
    report.add("6", f"online refresh, {online.report['clients']:,} clients", refresh, "s", "<= 2", refresh <= 2)
    port = free_port()
    server = subprocess.Popen(
        python_module("feature_store_assets.cli.main", "serve", "--port", port, "--log-level", "warning"),
        env={**os.environ, "FEATURE_STORE_ANALYTICS": str(analytics)},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v1/features/health", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # the server answers (503 until the file is loaded is fine: inference loads it)
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the HTTP server did not start") from None
                time.sleep(0.2)
        http = step(
            "HTTP",
            run_measured(python_module("benchmarks.serving", "http", url, scale.http_lookups, scale.serving_clients)),
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    report.add("6", f"HTTP lookup p50 ({scale.http_lookups:,} requests, second process)", http.report["p50_ms"], "ms")
    report.add("6", "HTTP lookup p99", http.report["p99_ms"], "ms", "<= 5", http.report["p99_ms"] <= 5)

    if not feast:
        return
    python = feast_python(HERE / ".cache")
    snapshots = export_snapshots(analytics, served / "snapshots.parquet")
    peer = HERE / "feast_peer.py"
    comparisons = {}
    for store_type, factor in (("duckdb", 3), ("file", 30)):
        print(f"5. Feast get_historical_features, {store_type} offline store ...", flush=True)
        out = served / f"feast_{store_type}.parquet"
        measured = step(
            f"feast {store_type}",
            run_measured(
                [
                    str(python),
                    str(peer),
                    "offline",
                    "--store",
                    store_type,
                    "--repo",
                    served / f"feast_{store_type}",
                    "--features",
                    snapshots,
                    "--entities",
                    entities,
                    "--out",
                    out,
                ]
            ),
        )
        feast_seconds = measured.report["seconds"]
        comparisons[store_type] = compare_training(served / "ours.parquet", out)
        speedup = feast_seconds / seconds
        report.add(
            "5",
            f"Feast {store_type} offline store, same retrieval",
            feast_seconds,
            "s",
            against=f"rows out {measured.report['rows_out']:,}; values agree: {comparisons[store_type]['agree']}",
        )
        report.add("5", f"ours faster than Feast {store_type} store", speedup, "x", f">= {factor}", speedup >= factor)
        report.add("5", f"peak RSS, Feast {store_type} store", measured.peak_rss_gib, "GiB")
    report.details["training_agreement"] = comparisons
    print("6. Feast online store (SQLite) ...", flush=True)
    measured = step(
        "feast online",
        run_measured(
            [
                str(python),
                str(peer),
                "online",
                "--repo",
                served / "feast_online",
                "--features",
                snapshots,
                "--lookups",
                scale.feast_lookups,
            ]
        ),
    )
    report.add(
        "6", "Feast materialize into SQLite", measured.report["materialize_seconds"], "s", against="our refresh above"
    )
    report.add(
        "6", f"Feast get_online_features p50 ({scale.feast_lookups:,} lookups)", measured.report["p50_ms"] * 1000, "µs"
    )
    report.add(
        "6",
        "Feast get_online_features p99",
        measured.report["p99_ms"] * 1000,
        "µs",
        against=f"ours {measured.report['p99_ms'] * 1000 / online.report['p99_us']:.0f}x faster",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--quick", action="store_const", const="quick", dest="scale", help="the same as --scale quick")
    parser.add_argument(
        "--workdir", type=Path, help="where the landing zone and stores go (default: benchmarks/work/<scale>)"
    )
    parser.add_argument("--out", type=Path, help="JSON results (default: benchmarks/results/<scale>.json)")
    parser.add_argument(
        "--reuse-landing-zone", action="store_true", help="keep a landing zone of the same shape from an earlier run"
    )
    parser.add_argument("--skip", action="append", default=[], choices=["pipeline", "serving", "feast"])
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    workdir = (args.workdir or HERE / "work" / args.scale).resolve()
    out = args.out or HERE / "results" / f"{args.scale}.json"
    workdir.mkdir(parents=True, exist_ok=True)
    LOGS[:] = [workdir / "logs"]
    report = Report(args.scale, scale)
    report.out = out
    print(
        f"machine: {report.details['machine']['cores']} cores, {report.details['machine']['memory_gib']} GiB; workdir {workdir}"
    )
    began = time.perf_counter()
    store = Store(workdir / "store")
    if "pipeline" not in args.skip:
        store = pipeline_benchmarks(report, scale, workdir, args.reuse_landing_zone)
    if "serving" not in args.skip:
        if not store.analytics.exists():
            raise SystemExit(f"{store.analytics} is missing: run the pipeline part first (without --skip pipeline)")
        serving_benchmarks(report, scale, workdir, store, feast="feast" not in args.skip)
    report.details["total_seconds"] = time.perf_counter() - began
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.json(), indent=2, default=str) + "\n")
    print(
        f"\n{args.scale} run in {report.details['total_seconds'] / 60:.1f} min on {report.details['machine']['cores']} cores, "
        f"{report.details['machine']['memory_gib']} GiB\n"
    )
    print(report.table())
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
