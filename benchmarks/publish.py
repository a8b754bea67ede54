"""Issue 15, item 7: publishing month by month into the Delta store, at the production shape of its inputs.

    python -m benchmarks.publish                  # full: 24 months, ~1.19M client_features rows a month
    python -m benchmarks.publish --scale small    # 1/50 of the rows (about 3 minutes after the template)
    python -m benchmarks.publish --scale tiny     # 4 months of a few hundred rows, 2 versions kept (the test's)

Running the whole pipeline for 24 production months takes hours here, so this measures publishing alone. It
builds a warehouse whose published tables are the real ones: their schemas, names, columns, types and comments
come from a real warehouse (a template: one small month through `feature-store materialize`, built once in the
work folder), which tables are monthly and their month keys from the dbt manifest (`monthly_tables`), the
schemas from the store (`PUBLISHED_SCHEMAS`). Each table gets the template's month-1 rows scaled by its grain:
a table with a `client_id` column by the production count of client_features rows a month over the template's
(benchmarks/results/full-pipeline.json: 1,192,353), one with only a `clinic_id` by the clinics (2,000 over 40),
any other (category pairs) as it is. The rows are synthetic values in DuckDB SQL (benchmarks/synthetic.py).

Then, month by month (1, 2, ..., N), the month's rows are added to the warehouse and the ledger says the month
was built and accepted (warehouse/ledger.py), and a fresh process publishes it as a Dagster run's publish step
does (defs/publish/analytics.py `publish_pending`, then `mark_published`): one store version each, with the
default retention (12 versions). Measured: every month's publish seconds and CPU seconds (inside that process,
after its imports; CPU time is less disturbed by other processes on a shared machine), month N / month 2 (target
<= 1.1). One publish's time on a shared machine follows the load of the moment, so the same ratio is also taken
paired: after month N, month 2 is published again (on a copy of the store as month 2 found it) alternating with
months N+1, N+2, ... on the full history, three of each (one at --scale tiny), and their medians compared. Then the store's bytes over
the current version's data files after month N (target <= 1.3x, the kept older versions' share and the Delta logs
and version records shown apart), and the publishing process's peak RSS. Prints a table; writes JSON with relative
paths only (--out). The template month takes about a minute, once per work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb

from benchmarks.measure import GIB, python_module, run_measured
from benchmarks.pipeline import PipelineScale, Store, generate, materialize, month
from benchmarks.run import Report
from benchmarks.synthetic import value_sql
from feature_store_assets.core.months import parse_month
from feature_store_assets.core.names import FEATURES_TABLE, LEDGER
from feature_store_assets.core.paths import SHIPPED_DAGSTER_HOME
from feature_store_assets.generator.landing_zone import CLIENT_ID_START, CLINIC_ID_START
from feature_store_assets.store import PUBLISHED_SCHEMAS, current_version, list_versions
from feature_store_assets.store.publishing import DEFAULT_KEEP_VERSIONS, warehouse_columns, warehouse_tables
from feature_store_assets.store.tables import DELTA_LOG
from feature_store_assets.store.versions import VERSIONS_DIR, Column, table_dir
from feature_store_assets.warehouse.connections import comment_on_columns, connect, quote, sql_string

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
FULL_PIPELINE = HERE / "results" / "full-pipeline.json"
# The real warehouse the tables are learned from: month 1 of a small landing zone (run.py's quick shape) of 24
# months like the full run's, so that clients join across the months as there (a 1-month landing zone has 30% more
# eligible clients per client-month row); only month 1 is materialized.
TEMPLATE_SHAPE = PipelineScale(
    inclinic_rows_per_month=100_000, clients=10_000, clinics=40, months=24, backfill_months=0
)
CLIENT, CLINIC, FIXED = "client", "clinic", "fixed"  # a table's grain: what its rows scale with


@dataclass(frozen=True)
class PublishScale:
    fraction: float  # of the production rows
    months: int  # published one by one
    keep: int  # store versions kept (FEATURE_STORE_KEEP_VERSIONS)
    pairs: int  # alternating publishes of month 2 and of a month on the whole history, after the months


SCALES = {
    "full": PublishScale(1.0, 24, DEFAULT_KEEP_VERSIONS, 3),
    "small": PublishScale(1 / 50, 24, DEFAULT_KEEP_VERSIONS, 3),
    "tiny": PublishScale(1 / 2000, 4, 2, 1),
}


@dataclass(frozen=True)
class ProductionShape:
    """What the full pipeline run measured (benchmarks/results/full-pipeline.json)."""

    client_feature_rows: int  # client_features rows of month 1
    clients: int
    clinics: int

    @classmethod
    def from_results(cls, results: dict) -> ProductionShape:
        pipeline = results["shape"]["pipeline"]
        return cls(
            client_feature_rows=results["month_1_agreement"]["naive_pandas"]["published_rows"],
            clients=pipeline["clients"],
            clinics=pipeline["clinics"],
        )


@dataclass(frozen=True)
class TablePlan:
    """One published table of the benchmark's warehouse: its columns (as the template has them) and its rows."""

    schema: str
    table: str
    comment: str | None
    columns: list[Column]
    month_column: str | None  # a monthly table's month key (from the manifest); None: written once
    model: str | None  # the dbt model of a monthly table (the ledger's name for it)
    grain: str
    rows: int  # a month's rows for a monthly table, all rows for another generated one; 0: copied from the template

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


def grain_of(columns: list[Column]) -> str:
    names = {c.name for c in columns}
    return CLIENT if "client_id" in names else CLINIC if "clinic_id" in names else FIXED


def scaled_rows(template_rows: int, grain: str, factors: dict[str, float], fraction: float) -> int:
    """A table's rows at the benchmark's scale: the template's, times its grain's factor and the scale's fraction
    (a table of fixed size, e.g. category pairs, keeps the template's count)."""
    if grain == FIXED:
        return template_rows
    return max(1, round(template_rows * factors[grain] * fraction))


def template_warehouse(root: Path) -> Path:
    """A real warehouse (and its published store) from one small month through `feature-store materialize`, built
    once in `root` and reused while its shape is the same."""
    store = Store(root)
    marker = root / "template.json"
    if marker.exists() and json.loads(marker.read_text()) == asdict(TEMPLATE_SHAPE) and store.warehouse.exists():
        return store.warehouse
    shutil.rmtree(root, ignore_errors=True)
    (root / "dagster_home").mkdir(parents=True)
    shutil.copy(SHIPPED_DAGSTER_HOME / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    print(f"template: materializing one month of {TEMPLATE_SHAPE.clients:,} clients (a real run) ...", flush=True)
    generate(store, TEMPLATE_SHAPE)
    materialize(store, 1, 1, env={"DAGSTER_HOME": str(root / "dagster_home")})
    marker.write_text(json.dumps(asdict(TEMPLATE_SHAPE)))
    return store.warehouse


def plan_tables(template: Path, production: ProductionShape, scale: PublishScale) -> list[TablePlan]:
    """The published tables of the template warehouse (but the ledger, which the ledger's functions write), with
    their month keys and a month's rows at the scale."""
    from feature_store_assets.defs.dbt.project import load_manifest
    from feature_store_assets.defs.publish.analytics import monthly_tables

    monthly = monthly_tables(load_manifest())
    with duckdb.connect(":memory:") as con:
        con.execute(f"attach {sql_string(str(template))} as warehouse (read_only)")
        columns = warehouse_columns(con)
        tables = [t for t in warehouse_tables(con, PUBLISHED_SCHEMAS) if f"{t[0]}.{t[1]}" != LEDGER]
        first = parse_month(month(1))
        counts = {}
        for schema, table, _ in tables:
            model, month_column = monthly.get((schema, table), (None, None))
            where = f" where {quote(month_column)} = date '{first}'" if month_column else ""
            counts[schema, table] = con.execute(
                f"select count(*) from warehouse.{quote(schema)}.{quote(table)}{where}"
            ).fetchone()[0]
    features = tuple(FEATURES_TABLE.split("."))
    factors = {
        CLIENT: production.client_feature_rows / counts[features],
        CLINIC: production.clinics / TEMPLATE_SHAPE.clinics,
    }
    plans = []
    for schema, table, comment in tables:
        model, month_column = monthly.get((schema, table), (None, None))
        grain = grain_of(columns[schema, table])
        generated = month_column is not None or grain == CLIENT  # other small tables are copied as they are
        rows = scaled_rows(counts[schema, table], grain, factors, scale.fraction) if generated else 0
        plans.append(TablePlan(schema, table, comment, columns[schema, table], month_column, model, grain, rows))
    return plans


def rows_sql(plan: TablePlan, month_start: date | None, clinics: int) -> str:
    """SELECT of the table's synthetic rows (of one month for a monthly table): keys in sequence, the month key
    set, every other column a synthetic value of its type."""
    anchor = f"date '{month_start or parse_month(month(1))}'"
    salt_month = month_start.isoformat() if month_start else "once"
    selected = []
    for index, column in enumerate(plan.columns):
        if column.name == plan.month_column:
            expression = anchor
        elif column.name == "client_id":
            expression = f"{CLIENT_ID_START} + i"
        elif column.name == "clinic_id":
            expression = f"{CLINIC_ID_START} + " + ("i" if plan.grain == CLINIC else f"i % {clinics}")
        else:
            try:
                expression = value_sql(column.type, "i", f"{salt_month}/{index}", anchor)
            except ValueError as error:
                raise ValueError(f"{plan.name}.{column.name}: {error}") from None
        selected.append(f"{expression} as {quote(column.name)}")
    return f"select {', '.join(selected)} from range({plan.rows}) r(i)"


def create_warehouse(template: Path, warehouse: Path, plans: list[TablePlan], clinics: int) -> None:
    """The benchmark's warehouse: every planned table with the template's columns and comments; the tables
    written once (reference, catalog) filled, the monthly ones empty."""
    warehouse.unlink(missing_ok=True)
    with connect(warehouse) as con:
        con.execute(f"attach {sql_string(str(template))} as template (read_only)")
        for schema in sorted({p.schema for p in plans}):
            con.execute(f"create schema if not exists {quote(schema)}")
        for plan in plans:
            relation = f"{quote(plan.schema)}.{quote(plan.table)}"
            source = f"template.{relation}"
            con.execute(f"create table {relation} as select * from {source} limit 0")
            if plan.comment:
                con.execute(f"comment on table {relation} is {sql_string(plan.comment)}")
            comment_on_columns(con, relation, {c.name: c.comment for c in plan.columns})
            if plan.month_column is None:
                query = rows_sql(plan, None, clinics) if plan.rows else f"select * from {source}"
                con.execute(f"insert into {relation} {query}")


def add_month(warehouse: Path, plans: list[TablePlan], index: int, clinics: int, run_id: str) -> int:
    """Month `index`'s rows into every monthly table, then the ledger: built by `run_id`, accepted. Rows added."""
    from feature_store_assets.warehouse.ledger import record_materialized_months, record_verdicts

    start = parse_month(month(index))
    monthly = [p for p in plans if p.month_column is not None]
    with connect(warehouse) as con:
        for plan in monthly:
            con.execute(f"insert into {quote(plan.schema)}.{quote(plan.table)} {rows_sql(plan, start, clinics)}")
    models = [p.model for p in monthly]
    record_materialized_months(warehouse, {p.model: {start: p.rows} for p in monthly}, run_id)
    record_verdicts(warehouse, models, [start], {})
    return sum(p.rows for p in monthly)


def cpu_seconds() -> float:
    """CPU time of this process, every thread (delta-rs's and DuckDB's) included: less disturbed than wall time by
    other processes on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def publish_once() -> dict:
    """In its own process, as the publish step of a monthly run: publish what the ledger says is due (the
    settings come from the environment), stamp it published; seconds from after the imports."""
    from feature_store_assets.core.settings import Settings
    from feature_store_assets.defs.dbt.project import load_manifest
    from feature_store_assets.defs.publish.analytics import publish_pending, python_asset_descriptions
    from feature_store_assets.warehouse.ledger import mark_published

    settings = Settings.from_env()
    load_manifest(), python_asset_descriptions()  # loaded by a run's process before its publish step
    began, cpu = time.perf_counter(), cpu_seconds()
    version, months = publish_pending(settings, run_id=os.environ.get("BENCHMARK_RUN_ID"))
    with connect(settings.warehouse) as con:
        mark_published(con, months)
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "version": version.version,
        "months": [f"{m:%Y-%m}" for m in months],
        "rows": sum(entry.rows for entry in version.tables.values()),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def store_disk(store_dir: Path) -> dict[str, int]:
    """Bytes of the store: the current version's data files, data files only older kept versions read, files no
    kept version reads (0 after a vacuum), and metadata (Delta logs, version records)."""
    current = current_version(store_dir)
    kept = list_versions(store_dir)

    def files(record) -> set[Path]:
        return {table_dir(store_dir, e.schema, e.table) / f.path for e in record.tables.values() for f in e.files}

    now = files(current)
    older = set().union(*(files(r) for r in kept)) - now
    sizes = {"current_data": 0, "older_versions_only": 0, "unreferenced": 0, "metadata": 0}
    for path in store_dir.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        if DELTA_LOG in path.parts or VERSIONS_DIR in path.relative_to(store_dir).parts[:1]:
            sizes["metadata"] += size
        elif path in now:
            sizes["current_data"] += size
        elif path in older:
            sizes["older_versions_only"] += size
        else:
            sizes["unreferenced"] += size
    sizes["total"] = sum(sizes.values())
    return sizes


def shown_path(path: Path) -> str | None:
    """A path as the JSON may hold it: relative to the repository, or nothing (no machine paths)."""
    try:
        return str(path.resolve().relative_to(REPOSITORY))
    except ValueError:
        return None


class Folder(Store):
    """A benchmark store (its warehouse and analytics file, pipeline.Store) with its published store, and the
    environment a publishing process reads."""

    @property
    def store_dir(self) -> Path:
        return self.root / "published"

    def publishing_env(self, keep: int) -> dict[str, str]:
        return {
            **self.env,
            "FEATURE_STORE_PUBLISHED_DIR": str(self.store_dir),
            "FEATURE_STORE_KEEP_VERSIONS": str(keep),
        }

    def copy_to(self, other: Folder) -> Folder:
        other.remove()
        other.root.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.warehouse, other.warehouse)
        if self.store_dir.exists():
            shutil.copytree(self.store_dir, other.store_dir)
        return other

    def remove(self) -> None:
        self.warehouse.unlink(missing_ok=True)
        self.analytics.unlink(missing_ok=True)
        shutil.rmtree(self.store_dir, ignore_errors=True)


def publish_measured(env: dict[str, str], label: str) -> dict:
    """One publish in a fresh process (publish_once), which must publish exactly month `label`: its seconds, CPU
    seconds, store version and peak RSS (the larger of the sampled process tree's and the process's own). Dirty
    pages (the month's rows just written, a copied store) are flushed first, so no publish pays for another's IO."""
    os.sync()
    measured = run_measured(
        python_module("benchmarks.publish", "--publish-once"), env={**env, "BENCHMARK_RUN_ID": f"benchmark-{label}"}
    )
    result = measured.report
    if result.get("months") != [label]:
        raise RuntimeError(f"month {label}: the publish wrote {result.get('months')}, not the month added")
    return {
        "seconds": result["seconds"],
        "cpu_seconds": result["cpu_seconds"],
        "store_version": result["version"],
        "peak_rss_gib": max(measured.peak_rss_bytes, result["max_rss_bytes"]) / GIB,
        "load_average": os.getloadavg()[0],
    }


def run(scale_name: str, workdir: Path, out: Path, keep_files: bool) -> dict:
    scale = SCALES[scale_name]
    report = Report(scale_name, scale)
    report.out = out
    began = time.perf_counter()
    production = ProductionShape.from_results(json.loads(FULL_PIPELINE.read_text()))
    template = template_warehouse(workdir / "template")
    plans = plan_tables(template, production, scale)
    primary, snapshot, control = Folder(workdir), Folder(workdir / "month-2-snapshot"), Folder(workdir / "control")
    for folder in (primary, snapshot, control):
        folder.remove()
    create_warehouse(template, primary.warehouse, plans, production.clinics)
    report.details.update(
        workdir=shown_path(workdir),
        production_shape=asdict(production),
        template_shape=asdict(TEMPLATE_SHAPE),
        tables={p.name: {"month_column": p.month_column, "grain": p.grain, "rows": p.rows or "copied"} for p in plans},
        load_average_at_start=os.getloadavg(),
    )
    print(f"{len(plans)} published tables; a month's rows at this scale:")
    for plan in plans:
        if plan.month_column:
            print(f"  {plan.name:<45} {plan.rows:>12,}  ({plan.grain}, by {plan.month_column})")
    months, generation = {}, 0.0

    def next_month(folder: Folder, index: int) -> dict:
        nonlocal generation
        label, started = month(index), time.perf_counter()
        rows = add_month(folder.warehouse, plans, index, production.clinics, run_id=f"benchmark-{month(index)}")
        generation += time.perf_counter() - started
        if index == 2 and folder == primary:  # the store as month 2 finds it, for the paired publishes at the end
            primary.copy_to(snapshot)
        return {"rows": rows, **publish_measured(folder.publishing_env(scale.keep), label)}

    def show(label: str, folder: Folder, result: dict) -> None:
        print(
            f"{label:<16} {result['seconds']:>10.2f} {result['cpu_seconds']:>7.2f} {result['peak_rss_gib']:>13.2f} "
            f"{tree_bytes(folder.store_dir) / 2**20:>10,.0f} {len(list_versions(folder.store_dir))}",
            flush=True,
        )

    print(f"{'month':<16} {'publish s':>10} {'CPU s':>7} {'peak RSS GiB':>13} {'store MiB':>10} versions")
    for index in range(1, scale.months + 1):
        months[month(index)] = next_month(primary, index)
        show(month(index), primary, months[month(index)])
    disk = store_disk(primary.store_dir)  # after month N: the store the disk figures are about
    kept = len(list_versions(primary.store_dir))
    analytics_bytes = primary.analytics.stat().st_size
    # Paired: a month on N months of history and month 2 (on the snapshot taken before month 2) alternate, so that
    # both sides see the same load on a shared machine.
    pairs = {"month_2": [], "history": []}
    for pair in range(scale.pairs):
        snapshot.copy_to(control)  # months 1 and 2 in its warehouse, month 1 published
        pairs["month_2"].append(
            {"rows": months[month(2)]["rows"], **publish_measured(control.publishing_env(scale.keep), month(2))}
        )
        show(f"{month(2)} (pair {pair + 1})", control, pairs["month_2"][-1])
        index = scale.months + 1 + pair
        pairs["history"].append(next_month(primary, index))
        show(f"{month(index)} (pair {pair + 1})", primary, pairs["history"][-1])
    report.details.update(
        months=months,
        pairs=pairs,
        generation_seconds=generation,
        load_average_at_end=os.getloadavg(),
        disk_bytes=disk,
        analytics_file_bytes=analytics_bytes,
    )
    last = month(scale.months)
    for key, what in (("seconds", "publish"), ("cpu_seconds", "publish CPU time")):
        first, final = months[month(2)][key], months[last][key]
        report.add("7", f"{what}, month 2 ({months[month(2)]['rows']:,} rows)", first, "s")
        report.add("7", f"{what}, month {scale.months} (on {scale.months - 1} months)", final, "s")
        ratio = final / first
        report.add("7", f"{what}: month {scale.months} / month 2", ratio, "x", "<= 1.1", ratio <= 1.1, "month 2")
        ratio = statistics.median(p[key] for p in pairs["history"]) / statistics.median(
            p[key] for p in pairs["month_2"]
        )
        report.add(
            "7",
            f"{what}: paired, on {scale.months}+ months / month 2",
            ratio,
            "x",
            "<= 1.1",
            ratio <= 1.1,
            f"medians of {scale.pairs} alternating publishes",
        )
    report.add("7", "current version's data files", disk["current_data"] / GIB, "GiB")
    share = disk["total"] / disk["current_data"]
    report.add("7", "store on disk / current data", share, "x", "<= 1.3", share <= 1.3, "current data")
    report.add(
        "7",
        f"  of it: files only older versions read ({kept - 1} kept)",
        disk["older_versions_only"] / disk["current_data"],
        "x",
    )
    report.add("7", "  of it: Delta logs and version records", disk["metadata"] / disk["current_data"], "x")
    peak = max(m["peak_rss_gib"] for m in [*months.values(), *pairs["month_2"], *pairs["history"]])
    report.add("7", "peak RSS of a publishing process", peak, "GiB")
    report.details["total_seconds"] = time.perf_counter() - began
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.json(), indent=2, default=str) + "\n")
    print(
        f"\n{scale_name} run in {report.details['total_seconds'] / 60:.1f} min (generating rows {generation:.0f} s)\n"
    )
    print(report.table())
    print(f"\nJSON: {shown_path(out) or out}")
    if not keep_files:
        primary.remove()
        for folder in (snapshot, control):
            shutil.rmtree(folder.root, ignore_errors=True)
    return report.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--workdir", type=Path, help="default: benchmarks/work/publish-<scale>")
    parser.add_argument("--out", type=Path, help="JSON results (default: benchmarks/results/publish[-<scale>].json)")
    parser.add_argument("--keep-files", action="store_true", help="keep the scaled warehouse and store afterwards")
    parser.add_argument("--publish-once", action="store_true", help=argparse.SUPPRESS)  # the measured child process
    args = parser.parse_args(argv)
    if args.publish_once:
        print(json.dumps(publish_once()))
        return 0
    workdir = (args.workdir or HERE / "work" / f"publish-{args.scale}").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.scale == "full" else f"-{args.scale}"
    run(args.scale, workdir, args.out or HERE / "results" / f"publish{suffix}.json", args.keep_files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
