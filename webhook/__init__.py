"""TradingView ingress: authenticate, validate, deduplicate, reject stale, enqueue."""
