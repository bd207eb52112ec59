# -*- coding: utf-8 -*-
"""README.md: the set-up commands CI runs, the sections in the order SOAR administrators know, links that lead
somewhere."""

import os
import re

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETUP_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install . && outbound-email demo"
# the order of IBM's app READMEs, with this app's additions
SECTIONS = ["Table of contents", "Release notes", "Overview", "Requirements", "Installation", "app.config",
            "Function inputs and outputs", "Customizations", "Upgrading from IBM's app", "Troubleshooting",
            "Security", "Performance", "Development"]


def read(name):
    with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def github_anchor(heading):
    """The id GitHub gives a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(text):
    without_code = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"^(#{1,4}) (.+)$", without_code, flags=re.M)


def test_the_two_set_up_commands_come_first_and_the_test_command_is_what_ci_runs():
    readme = read("README.md")
    ci_last_line = [line for line in read(".ci/run").splitlines() if line.strip()][-1]
    first_block = re.search(r"```sh\n(.*?)```", readme, flags=re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands == [SETUP_COMMAND, ci_last_line]
    assert readme.index(SETUP_COMMAND) < readme.index("## Table of contents")


def test_sections_come_in_the_administrators_order():
    top_level = [title for level, title in headings(read("README.md")) if level == "##"]
    assert top_level == SECTIONS


def test_every_link_leads_to_a_heading_or_a_file():
    readme = read("README.md")
    anchors = {github_anchor(title) for _, title in headings(readme)}
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links
    for link in links:
        if link.startswith("#"):
            assert link[1:] in anchors, link
        elif not re.match(r"^[a-z]+://", link):
            assert os.path.exists(os.path.join(REPO_ROOT, link)), link


def test_the_readme_keeps_no_default_port_in_links_and_no_unfilled_placeholder():
    readme = read("README.md")
    assert ":443/#incidents" not in readme
    assert "_Placeholder:" not in readme
    upgrading = readme[readme.index("## Upgrading from IBM's app"):readme.index("## Troubleshooting")]
    for heading in ("### What carries over unchanged", "### What changed on purpose, and why", "### Steps"):
        assert heading in upgrading


def test_the_template_helper_table_lists_exactly_the_methods_templates_can_call():
    from fn_outbound_email.lib.templates.helper import TemplateHelper
    readme = read("README.md")
    start = readme.index("It has exactly these 18 methods")
    table = readme[start:readme.index("\n\n", readme.index("| method |", start))]
    listed = set(re.findall(r"`(\w+)\(", table))
    assert listed == set(TemplateHelper.TEMPLATE_METHODS) and len(listed) == 18     # IBM's 17 and get_task


def test_the_check_command_and_the_selftest_order_are_documented():
    readme = read("README.md")
    assert "outbound-email check" in readme
    assert "resilient-sdk validate -p . --validate" in readme
