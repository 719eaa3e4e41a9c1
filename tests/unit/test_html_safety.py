"""core/html_safety.py: hostile scraped values stay inert in the HTML that Evidently and GX write.

The reports are made by the real libraries and read back with a real HTML parser (the standard
library's, which like a browser treats a script's content as raw text up to ``</script>``): a value that
breaks out of Evidently's inline data block shows up as extra ``<script>`` elements and ``on*``
attributes.
"""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

# What a hostile listings site put into the `city` column (a categorical drift column of the demo).
HOSTILE = ["</script><script>alert(1)</script>", '</script><img src=x onerror="alert(2)">',
           "<!--<script>", "Lyon & Co", "Paris"]


class ActiveContent(HTMLParser):
    """What a browser would run: <script> elements (src, text) and on* event-handler attributes."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append([dict(attrs).get("src"), ""])
        self.handlers += [(tag, name, value) for name, value in attrs if name.lower().startswith("on")]

    def handle_data(self, data):
        if self.lasttag == "script" and self.scripts:
            self.scripts[-1][1] += data


def active_content(path) -> tuple[list, list]:
    parser = ActiveContent()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.scripts, parser.handlers


def test_neutralised_text_is_inert_and_distinct_values_stay_distinct():
    from mlops_pack.core.html_safety import neutralise_json, neutralise_text

    assert neutralise_text("</script>") == "&lt;/script&gt;"
    assert neutralise_text("Lyon") == "Lyon" and neutralise_text(None) is None and neutralise_text(3.5) == 3.5
    samples = [*HOSTILE, "&lt;", "<", "&amp;lt;"]
    assert len({neutralise_text(v) for v in samples}) == len(samples)  # one-to-one: frequencies unchanged
    assert neutralise_json({"a": ["<b>", {"c": "<d>"}], "n": 1}) == {"a": ["&lt;b&gt;", {"c": "&lt;d&gt;"}], "n": 1}


def test_neutralise_frame_touches_only_text_that_needs_it():
    from mlops_pack.core.html_safety import neutralise_frame

    frame = pd.DataFrame({"city": ["<b>", None, "Lyon", "<b>"], "area": [1.0, 2.0, np.nan, 4.0],
                          "kind": pd.Categorical(["<x>", "y", "y", "<x>"]), "clean": ["a", "b", "c", "d"]})
    safe = neutralise_frame(frame)
    assert safe["city"].tolist() == ["&lt;b&gt;", None, "Lyon", "&lt;b&gt;"]
    assert list(safe["kind"].cat.categories) == ["&lt;x&gt;", "y"] and safe["kind"].tolist()[0] == "&lt;x&gt;"
    assert safe["area"] is frame["area"] or safe["area"].equals(frame["area"])
    assert frame["city"].tolist()[0] == "<b>"  # the caller's frame is not changed
    clean = frame[["area", "clean"]]
    assert neutralise_frame(clean) is clean  # nothing to do: no copy


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The drift report of benign data and of data holding hostile values, by the real Evidently."""
    from mlops_pack.core.drift import drift_report

    out = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"city": rng.choice(["Lyon", "Paris", "Nice"], 300), "area": rng.normal(60, 20, 300)})
    current = pd.DataFrame({"city": rng.choice(HOSTILE, 300), "area": rng.normal(60, 20, 300)})
    made = {}
    for name, frame in (("benign", reference), ("hostile", current)):
        made[name] = drift_report(reference, frame, ["area"], ["city"], 0.5, out / f"{name}.html",
                                  out / f"{name}.json")
    return out, made


def test_hostile_values_do_not_add_scripts_or_event_handlers_to_the_drift_report(reports):
    out, _ = reports
    benign_scripts, benign_handlers = active_content(out / "benign.html")
    scripts, handlers = active_content(out / "hostile.html")
    # before the fix: 10 <script> (4 are Evidently's) and 6 <img onerror> in the hostile report
    assert (len(scripts), handlers) == (len(benign_scripts), benign_handlers) and handlers == []
    assert not any(text.strip().startswith("alert(") for _, text in scripts)  # the injected one
    assert "&lt;/script&gt;&lt;img src=x onerror" in (out / "hostile.html").read_text(encoding="utf-8")


def test_the_drift_verdict_is_the_one_of_the_raw_values(reports):
    _, made = reports
    assert made["hostile"]["drifted_columns"] == ["city"] and made["benign"]["drifted_columns"] == []


def test_data_docs_show_hostile_values_as_text(tmp_path):
    from mlops_pack.core.validate import validate_frame

    in_set = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "city", "value_set": ["Paris"]}}
    result = validate_frame(pd.DataFrame({"city": HOSTILE * 10}), [in_set], "hostile", docs_dir=tmp_path)
    assert result["failed"] == 1 and HOSTILE[0] in result["failures"][0]["sample"]  # validated raw values
    [page] = (tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations").rglob("*.html")
    scripts, handlers = active_content(page)
    # before the fix: an inline <script>alert(1)</script> and an <img onerror> on this page. GX's own
    # page has inline scripts and onclick handlers on its show/hide controls, none of them ours.
    assert not any("alert(" in text for _, text in scripts)
    assert [(tag, name) for tag, name, value in handlers if "alert(" in value] == []
    assert {(tag, name) for tag, name, _ in handlers} <= {("label", "onclick"), ("button", "onclick")}
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page.read_text(encoding="utf-8")  # shown as text
