# -*- coding: utf-8 -*-
"""doc/make_screenshot.py: the README's picture of the demo mail.

The reading-pane page is checked always; the picture itself needs Chromium and is
skipped, with the reason, where it is not installed.
"""

import os
import struct
import subprocess
import sys

import pytest

from tests.support.smtp_server import ReceivedMessage

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "doc"))

import make_screenshot  # noqa: E402


def png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_reading_pane_shows_the_headers_attachments_and_html_part(tmp_path):
    eml_path = make_screenshot.run_demo(str(tmp_path / "outbox"))
    with open(eml_path, "rb") as handle:
        data = handle.read()
    page = make_screenshot.reading_pane_html(data)
    message = ReceivedMessage("", [], data).message

    for name in ("From", "To", "Cc", "Date"):
        assert "<td class='name'>{0}</td>".format(name) in page
    assert "SOC Team &lt;soc@example.com&gt;" in page                     # addresses escaped, not markup
    assert "audit@example.com" not in page                                 # Bcc is in no header
    assert "[SOAR] Incident 2095: Phishing: fake invoice mails to the finance team" in page
    assert "original-mail-headers.txt" in page and "High importance" in page
    # the HTML part sits escaped in a sandboxed iframe, so its markup cannot leak into the pane
    html_part = message.get_body(preferencelist=("html",)).get_content()
    assert "<iframe sandbox=''" in page
    assert "&lt;h2 style=" in page and html_part.count("<h2") == page.count("&lt;h2")
    assert "<h2" not in page


def test_reading_pane_of_a_text_mail_shows_the_text_escaped():
    data = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: plain <one>\r\nDate: Thu, 01 Aug 2024 06:40:00 +0000"
            b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nx < y & z\r\n")
    page = make_screenshot.reading_pane_html(data)
    assert "plain &lt;one&gt;" in page and "x &amp;lt; y &amp;amp; z" in page and "Thu 01 Aug 2024 06:40" in page
    assert "class='attachments'" not in page


@pytest.mark.skipif(make_screenshot.find_chromium() is None,
                    reason="chromium is not installed (Debian: apt-get install -y chromium); the picture is not made")
def test_script_makes_the_picture_with_headless_chromium(tmp_path):
    out = tmp_path / "shots" / "demo.png"
    before = set(os.listdir(str(tmp_path)))
    completed = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "doc", "make_screenshot.py"), "--out", str(out)],
                               capture_output=True, text=True, timeout=180, env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert completed.returncode == 0, completed.stderr
    assert png_size(str(out)) == make_screenshot.WINDOW
    assert os.path.getsize(str(out)) > 20000                                # a picture with content, not a blank page
    assert set(os.listdir(str(tmp_path))) == before | {"shots"}            # the demo folder and profile are gone


def test_committed_picture_is_there_for_the_readme():
    picture = os.path.join(REPO_ROOT, "doc", "screenshots", "demo_mail.png")
    assert png_size(picture) == make_screenshot.WINDOW
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        assert "doc/screenshots/demo_mail.png" in handle.read()
