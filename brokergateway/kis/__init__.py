"""A KIS Open API client on async httpx."""
