"""Order to KIS: tokens, rate limits, submit/cancel, fills, reconciliation, sync, quotes."""
