"""The raw landing zone: its source assets and the validation of its files against the contract."""
