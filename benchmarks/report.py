"""The Performance table of docs/performance.md from a results file: `python -m benchmarks.report benchmarks/results/full.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"Measured {results['finished'][:10]} on {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}, DuckDB {machine['packages']['duckdb']}, dagster {machine['packages']['dagster']}, "
        f"dbt-core {machine['packages']['dbt-core']}; DuckDB memory limit {results.get('duckdb_memory_limit', '?')}; "
        f"whole run {results['total_seconds'] / 60:.0f} min.",
        "",
        "| item | figure | value | target | met | compared with |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for row in results["results"]:
        value = f"{row['value']:,.2f} {row['unit']}" if row["value"] < 1000 else f"{row['value']:,.0f} {row['unit']}"
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        lines.append(f"| {row['item']} | {row['figure']} | {value} | {row['target']} | {met} | {row['against']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
