"""The feature catalog asset (its logic is in serving/catalog.py)."""
