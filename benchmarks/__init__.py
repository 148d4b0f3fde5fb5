"""``make bench``: drives the running system and measures latency, throughput and memory."""
