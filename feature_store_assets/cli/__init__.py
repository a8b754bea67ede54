"""The `feature-store` command: demo, generate, materialize, accept, ui and the serving commands."""
