"""The `mlops-pack` command: check, run and open the UI for any pipeline spec (docs/tutorial.md)."""
