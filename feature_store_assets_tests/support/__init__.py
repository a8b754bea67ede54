"""Helpers the tests share: the pandas oracles, the edge-case landing zone, servers and processes, published stores."""
