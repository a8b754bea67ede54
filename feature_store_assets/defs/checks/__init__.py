"""Data-quality checks with numbers: row counts, null rates, rejected rows, eligibility, point in time, drift."""
