"""Publishing: the accepted months copied to the analysts' analytics database."""
