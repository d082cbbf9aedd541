"""docs/RELIABILITY.md stays true: every test it cites exists, and its count of bad inputs is the table's."""

import re
from pathlib import Path

from test_bad_inputs import CASES

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "RELIABILITY.md").read_text()


def test_every_cited_test_exists():
    cited = set(re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", DOC))
    assert len(cited) > 30
    missing = [f"{path}::{name}" for path, name in sorted(cited)
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)]
    assert not missing, missing


def test_the_bad_input_count_is_the_tables():
    assert f"**{len(CASES)} bad inputs**" in DOC
