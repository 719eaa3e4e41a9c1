"""docs/spec.md lists every spec field, generated from the spec model, so it cannot drift."""

from __future__ import annotations

from mlops_pack.cli.spec_docs import fields, undocumented, update

from tests.support.env import REPO


def test_every_spec_field_has_a_description():
    assert undocumented() == [], "add Field(description=...) in core/spec/ (or a note in cli/spec_docs.py)"


def test_docs_spec_md_is_generated_from_the_current_model():
    assert not update(REPO / "docs" / "spec.md", check=True), "run `mlops-pack spec-docs` and commit docs/spec.md"


def test_every_field_path_is_in_docs_spec_md():
    text = (REPO / "docs" / "spec.md").read_text()
    missing = [row["path"] for row in fields() if f"| `{row['path']}` |" not in text]
    assert missing == []
    for path in ("model.holdout_fraction", "description", "owner", "retrain.triggers", "model.stratify"):
        assert f"| `{path}` |" in text
