# -*- coding: utf-8 -*-
"""Make doc/screenshots/demo_mail.png: the demo mail as a mail client's reading pane shows it.

Runs ``outbound-email demo`` into a temporary folder, turns the .eml it saves into
an HTML page laid out like a reading pane (From, To, Cc, Subject, Date, the
attachment list, then the HTML part) and photographs that page with headless
Chromium (Debian: ``apt-get install -y chromium``). The HTML part is shown in a
sandboxed iframe, as mail clients do, so its styles cannot touch the pane.

    python doc/make_screenshot.py                  # writes doc/screenshots/demo_mail.png
    python doc/make_screenshot.py --out mail.png --keep-html pane.html
"""

import argparse
import contextlib
import glob
import html
import io
import os
import shutil
import subprocess
import sys
import tempfile
from email.utils import parsedate_to_datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fn_outbound_email.cli.common import parse_message  # noqa: E402
from fn_outbound_email.cli.main import main as outbound_email  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "doc", "screenshots", "demo_mail.png")
WINDOW = (1000, 1040)               # width, height of the picture in pixels
MAIL_BODY_HEIGHT = 770             # the iframe showing the HTML part
CHROMIUM_TIMEOUT_SECONDS = 120
# headless, and nothing that reaches out to the network or needs a user profile
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]

PANE_STYLE = """
body { margin: 0; font-family: "Segoe UI", Arial, Helvetica, sans-serif; background: #f3f3f3; color: #202020; }
.toolbar { background: #2f5597; color: #ffffff; padding: 10px 18px; font-size: 15px; }
.pane { margin: 14px; background: #ffffff; border: 1px solid #d6d6d6; }
.subject { font-size: 20px; font-weight: 600; padding: 16px 18px 6px 18px; }
.importance { color: #c00000; font-size: 13px; padding: 0 18px 8px 18px; }
table.headers { border-collapse: collapse; margin: 0 18px 10px 18px; font-size: 13px; }
table.headers td { padding: 2px 10px 2px 0; vertical-align: top; }
table.headers td.name { color: #606060; width: 60px; }
.attachments { border-top: 1px solid #e5e5e5; border-bottom: 1px solid #e5e5e5; padding: 8px 18px; font-size: 13px; }
.attachment { display: inline-block; border: 1px solid #c8c8c8; border-radius: 3px; padding: 4px 10px;
              margin-right: 8px; background: #fafafa; }
.attachment .size { color: #707070; }
.attachments .label { color: #606060; margin-right: 6px; }
iframe { border: 0; width: 100%; }
"""


def run_demo(out_folder):
    """``outbound-email demo --out out_folder``; returns the path of the .eml it saved."""
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = outbound_email(["demo", "--out", out_folder])
    if code != 0:
        raise RuntimeError("outbound-email demo failed with exit code {0}:\n{1}".format(code, printed.getvalue()))
    found = glob.glob(os.path.join(out_folder, "*.eml"))
    if len(found) != 1:
        raise RuntimeError("expected one .eml in {0}, found {1}".format(out_folder, found))
    return found[0]


def _size_text(size):
    return "{0} bytes".format(size) if size < 1024 else "{0:.1f} KB".format(size / 1024.0)


def reading_pane_html(message_bytes):
    """An HTML page showing the message as a mail client's reading pane; every mail value is escaped."""
    message = parse_message(message_bytes)
    html_part = message.get_body(preferencelist=("html", "plain"))
    if html_part is None:
        raise ValueError("the message has no text or HTML body")
    body = html_part.get_content()
    if html_part.get_content_type() == "text/plain":
        body = "<pre style='font-family: monospace; white-space: pre-wrap'>{0}</pre>".format(html.escape(body))
    date = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    headers = [("From", message["From"]), ("To", message["To"]), ("Cc", message["Cc"]),
               ("Date", date.strftime("%a %d %b %Y %H:%M") if date else None)]
    header_rows = "".join(
        "<tr><td class='name'>{0}</td><td>{1}</td></tr>".format(name, html.escape(str(value)))
        for name, value in headers if value)
    attachments = "".join(
        "<span class='attachment'>{0} <span class='size'>({1})</span></span>".format(
            html.escape(part.get_filename()), _size_text(len(part.get_payload(decode=True) or b"")))
        for part in message.iter_attachments() if part.get_filename())
    importance = str(message.get("Importance", "")).strip().lower()
    return "".join([
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Demo mail</title><style>", PANE_STYLE,
        "</style></head><body>",
        "<div class='toolbar'>Inbox &rsaquo; soc@example.com</div>",
        "<div class='pane'>",
        "<div class='subject'>{0}</div>".format(html.escape(str(message["Subject"]).strip())),
        "<div class='importance'>This message was sent with High importance.</div>"
        if importance == "high" else "",
        "<table class='headers'>", header_rows, "</table>",
        "<div class='attachments'><span class='label'>Attachments:</span> {0}</div>".format(attachments) if attachments else "",
        # sandbox with no permissions: the mail's HTML runs no script and opens nothing, as in a mail client
        "<iframe sandbox='' style='height: {0}px' srcdoc=\"{1}\"></iframe>".format(
            MAIL_BODY_HEIGHT, html.escape(body, quote=True)),
        "</div></body></html>",
    ])


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(page_path, png_path, chromium, window=WINDOW):
    """Photograph page_path with headless Chromium into png_path (a fresh profile, removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="outbound-email-chromium-") as profile:
        command = [chromium] + CHROMIUM_FLAGS + [
            "--user-data-dir=" + profile, "--screenshot=" + os.path.abspath(png_path),
            "--window-size={0},{1}".format(*window), "file://" + os.path.abspath(page_path)]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_SECONDS)
    if completed.returncode != 0 or not os.path.isfile(png_path):
        raise RuntimeError("chromium failed (exit code {0}):\n{1}".format(completed.returncode, completed.stderr))
    return png_path


def make(out_path=DEFAULT_OUT, chromium=None, keep_html=None):
    chromium = chromium or find_chromium()
    if not chromium:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="outbound-email-screenshot-") as work:
        with open(run_demo(os.path.join(work, "outbox")), "rb") as eml:
            page = reading_pane_html(eml.read())
        page_path = os.path.join(work, "pane.html")
        with open(page_path, "w", encoding="utf-8") as handle:
            handle.write(page)
        if keep_html:
            shutil.copyfile(page_path, keep_html)
        return screenshot(page_path, out_path, chromium)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="the PNG to write (default: %(default)s)")
    parser.add_argument("--chromium", help="the Chromium program (default: chromium on PATH)")
    parser.add_argument("--keep-html", metavar="FILE", help="also save the reading-pane page")
    args = parser.parse_args(argv)
    try:
        print("Wrote " + make(args.out, args.chromium, args.keep_html))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        print("make_screenshot: error: {0}".format(err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
