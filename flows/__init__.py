"""Prefect flows and tasks, the CLI and the deployments: thin wiring over the other packages."""
