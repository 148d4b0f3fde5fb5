"""The trader's web dashboard."""
