"""A spec's YAML is read through libyaml's C parser (issue 27: the pure-Python scanner was ~90% of a
spec's load, paid at every DAG-file parse and by ``mlops-pack check``), with SafeLoader's result and the
same bounds: depth, alias expansion, duplicate keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlops_pack.core import spec_yaml
from mlops_pack.core.spec_yaml import SpecYamlError, read_yaml

REPO = Path(__file__).resolve().parents[2]


def test_the_loader_takes_its_events_from_libyaml():
    assert yaml.__with_libyaml__  # the lock's PyYAML wheels have it
    assert issubclass(spec_yaml._BoundedLoader, yaml._yaml.CParser)


@pytest.mark.parametrize("path", sorted((REPO / "include" / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_specs_read_as_safe_load_reads_them(path):
    assert read_yaml(path) == yaml.safe_load(path.read_text())


def test_every_yaml_feature_a_spec_may_use_reads_the_same(tmp_path):
    text = ("a: &x {b: [1, 2.5, null, true, '03', 2026-11-02]}\nc: *x\nd: |\n  two\n  lines\n"
            "e: !!str 12\nf: {<<: *x, g: 1}\n'h i': [\"\\u00e9\", ~]\n")
    (tmp_path / "s.yaml").write_text(text)
    assert read_yaml(tmp_path / "s.yaml") == yaml.safe_load(text)


@pytest.mark.parametrize(("text", "message"), [
    ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 50 levels (line 1)"),
    ("a: 1\nb:\n  c: 2\n  c: 3\n", "key 'c' is written twice in one mapping (lines 3 and 4)"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", "aliases expand to more than 100,000 values"),
])
def test_the_bounds_hold(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(SpecYamlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_yaml(tmp_path / "s.yaml")


def test_a_syntax_error_names_its_line(tmp_path):
    (tmp_path / "s.yaml").write_text("a: 1\nb: [2\nc: 3\n")
    with pytest.raises(yaml.YAMLError, match="line"):
        read_yaml(tmp_path / "s.yaml")
