"""A data scientist's own model code, as a spec's ``model.pipeline`` names it (tests/operators, tests/cli)."""
