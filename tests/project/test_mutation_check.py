# -*- coding: utf-8 -*-
"""tests/mutation_check.py stays current: every mutant's anchor is in the source exactly once, and planting
it changes the file into valid Python (the full check is run by hand: python tests/mutation_check.py)."""

import ast
import os

import pytest

from tests import mutation_check


@pytest.mark.parametrize("mutant", mutation_check.MUTANTS, ids=lambda m: str(m.number))
def test_mutant_anchor_is_unique_and_plants_valid_python(mutant, tmp_path):
    assert mutation_check.anchor_count(mutant) == 1, "update the mutant: its anchor moved"
    target = tmp_path / "repo" / mutant.path
    target.parent.mkdir(parents=True)
    with open(os.path.join(mutation_check.ROOT, mutant.path), encoding="utf-8") as source:
        target.write_text(source.read(), encoding="utf-8")
    mutation_check.plant(mutant, str(tmp_path / "repo"))
    planted = target.read_text(encoding="utf-8")
    assert mutant.replacement in planted
    ast.parse(planted)
    for test in mutant.tests:
        assert os.path.isfile(os.path.join(mutation_check.ROOT, test.split("::")[0])), test


def test_fourteen_distinct_mutants():
    assert [m.number for m in mutation_check.MUTANTS] == list(range(1, 15))
