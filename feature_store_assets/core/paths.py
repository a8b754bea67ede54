"""Where the repository's parts are, for code that runs from any working directory."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PACKAGE_DIR.parent
DBT_PROJECT_DIR = REPO_DIR / "dbt_subproject"
SHIPPED_DAGSTER_HOME = REPO_DIR / "dagster_home"
WORKSPACE = REPO_DIR / "workspace.yaml"
