"""Alert text per channel (core/alert_text.py): values are shown as the text they are."""

from __future__ import annotations

from mlops_pack.core.alert_text import plain, slack, subject_line


def test_slack_markup_in_values_is_shown_not_interpreted():
    assert slack("<!channel> <!here> <@U123> <http://x|y> a & b") == (
        "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;http://x|y&gt; a &amp; b")


def test_controls_and_bidi_overrides_are_removed_and_length_bounded():
    assert plain("a\x00b\x1b[31mc\u202eexe.pdf\r\nnext\tcol") == "ab[31mcexe.pdf\nnext\tcol"
    assert len(plain("x" * 20_000)) == 10_000 and plain("x" * 20_000).endswith("…")


def test_a_subject_is_one_short_line():
    assert subject_line("[shop] rejected\nBcc: all@example.test\r\n") == "[shop] rejected Bcc: all@example.test"
    assert len(subject_line("y" * 500)) == 200
