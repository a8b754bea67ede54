"""Synthetic raw landing zone for tests, demos and benchmarks (see docs/data-contract.md)."""

from feature_store_assets.generator.landing_zone import GeneratorOptions, generate_landing_zone

__all__ = ["GeneratorOptions", "generate_landing_zone"]
