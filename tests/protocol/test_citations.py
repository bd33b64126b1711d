"""Every `§` cited in the code resolves inside the repository, in docs/protocol.md (our copy of the
SOMA protocol reference).

A citation `§N` must name a `## N.` section of docs/protocol.md; `§N.M` a `### N.M` subsection or,
where a section is a numbered list (§11's checklist), its item `M.`. Scanned: every source file
under soma_ray/ and jobs/ (code and docstrings alike).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "protocol.md"
CITATION = re.compile(r"§(\d+(?:\.\d+)?)")


def reference_sections() -> set[str]:
    """Section numbers of docs/protocol.md; list items count only in sections without subsections."""
    sections: set[str] = set()
    items: dict[str, set[str]] = {}
    current = None
    for line in REFERENCE.read_text().splitlines():
        if m := re.match(r"## (\d+)\. ", line):
            current = m.group(1)
            sections.add(current)
        elif m := re.match(r"### (\d+\.\d+) ", line):
            sections.add(m.group(1))
        elif current is not None and (m := re.match(r"(\d+)\. ", line)):
            items.setdefault(current, set()).add(f"{current}.{m.group(1)}")
    for section, numbered in items.items():
        if not any(s.startswith(section + ".") for s in sections):
            sections |= numbered
    return sections


def test_reference_is_in_the_repository() -> None:
    sections = reference_sections()
    assert {"1", "1.8", "3.4", "4.2", "4.3", "5", "6", "10", "11.3", "13"} <= sections


def test_every_cited_section_exists() -> None:
    sections = reference_sections()
    missing = []
    for root in ("soma_ray", "jobs"):
        for path in sorted((REPO / root).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for cited in CITATION.findall(line):
                    if cited not in sections:
                        missing.append(f"{path.relative_to(REPO)}:{number}: §{cited}")
    assert not missing, "sections cited but not in docs/protocol.md:\n" + "\n".join(missing)
