"""The checks of ``make deploy-check`` (scripts/deploy_check.py), one module each."""
