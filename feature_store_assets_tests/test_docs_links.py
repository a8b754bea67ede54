"""The documentation holds together: every relative link of README.md and docs/*.md resolves inside the repository.

A link resolves when its file (or folder) exists in the repository and, for a link with `#anchor` into a Markdown
page, that page has a heading with GitHub's anchor for it. Nothing points outside the repository (users never see
`../shared`), the README stays short, and docs/features.md lists exactly the columns the dbt yml describes.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import yaml

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
OUTSIDE_REFERENCES = ("../shared", "shared/spec")


def prose_lines(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (a link or heading inside a code block is not one)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without markup, lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown page, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def link_targets(text: str) -> list[str]:
    """The targets of the page's inline and reference links and images, outside code."""
    targets = []
    for line in prose_lines(text):
        reference = REFERENCE_LINK.match(line)
        if reference:
            targets.append(reference.group(1))
            continue
        targets += INLINE_LINK.findall(INLINE_CODE.sub("", line))
    return targets


def broken_links(page: Path, root: Path) -> list[str]:
    """What is wrong with each relative link of `page`: a file missing, outside `root`, or an anchor without heading."""
    problems = []
    name = page.relative_to(root).as_posix()
    for target in link_targets(page.read_text()):
        if SCHEME.match(target):
            continue  # https:, mailto:: not a file of the repository
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not resolved.is_relative_to(root):
            problems.append(f"{name}: link {target!r} points outside the repository ({resolved})")
            continue
        if not resolved.exists():
            problems.append(f"{name}: link {target!r}: no file {resolved.relative_to(root).as_posix()}")
            continue
        if anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in anchors(resolved.read_text()):
            problems.append(
                f"{name}: link {target!r}: no heading with anchor #{anchor} in {resolved.relative_to(root).as_posix()}"
            )
    return problems


def outside_references(page: Path, root: Path) -> list[str]:
    """Mentions of files outside the repository (`../shared/...`), in links, code or prose."""
    name = page.relative_to(root).as_posix()
    return [
        f"{name}:{number}: mentions {reference!r}, which users of the repository cannot see"
        for number, line in enumerate(page.read_text().splitlines(), 1)
        for reference in OUTSIDE_REFERENCES
        if reference in line
    ]


def doc_pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


# ---------------------------------------------------------------- the repository's pages


def test_every_relative_link_of_the_readme_and_docs_resolves():
    pages = doc_pages(REPO)
    assert len(pages) >= 12, pages  # README.md and the docs/ pages
    problems = [problem for page in pages for problem in broken_links(page, REPO)]
    assert problems == []


def test_the_readme_and_docs_never_point_outside_the_repository():
    problems = [problem for page in doc_pages(REPO) for problem in outside_references(page, REPO)]
    assert problems == []


def test_the_readme_is_short_and_keeps_the_two_fresh_machine_commands():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    assert "pip install -e . && feature-store demo" in readme
    assert 'pip install -e ".[dev]" && python -m pytest -n 2' in readme


def test_the_features_page_lists_the_columns_of_the_dbt_yml_in_order():
    """docs/features.md's column table: every column of client_features.yml, in order, with its type and window."""
    yml = yaml.safe_load((REPO / "dbt_subproject/models/features/client_features.yml").read_text())
    (model,) = [m for m in yml["models"] if m["name"] == "client_features"]
    declared = [
        (c["name"], c["data_type"].upper(), ((c.get("meta") or {}).get("feature") or {}).get("window", "—"))
        for c in model["columns"]
    ]
    page = (REPO / "docs/features.md").read_text()
    columns_section = page.split("\n## Columns\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in columns_section.splitlines() if line.startswith("| ")]
    listed = [tuple(cell.strip() for cell in row) for row in rows[1:] if not row[0].strip().startswith("---")]
    assert listed == declared


# ---------------------------------------------------------------- the checker finds what it should


def test_the_checker_names_each_broken_link_and_ignores_code(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## The `ledger`: months, states\n\n## Notes\n\n## Notes\n\n"
        "[back](../README.md#quickstart) [self](#notes-1) [web](https://example.com/x.md#nowhere)\n"
    )
    (tmp_path / "README.md").write_text(
        "# Project\n\n## Quickstart\n\n"
        "[ledger](docs/guide.md#the-ledger-months-states) [folder](docs)\n"
        "[gone](docs/missing.md) [bad anchor](docs/guide.md#no-such-heading) [spec](../shared/spec/FEATURES.md)\n"
        "`[in code](docs/nothing.md)`\n\n```\n[in a fence](docs/nothing.md)\n# not a heading\n```\n\n"
        "[ref]: docs/also-missing.md\n"
        "The definitions are in ../shared/spec/FEATURES.md.\n"
    )
    problems = [problem for page in doc_pages(tmp_path) for problem in broken_links(page, tmp_path)]
    assert problems == [
        "README.md: link 'docs/missing.md': no file docs/missing.md",
        "README.md: link 'docs/guide.md#no-such-heading': no heading with anchor #no-such-heading in docs/guide.md",
        f"README.md: link '../shared/spec/FEATURES.md' points outside the repository ({tmp_path.parent / 'shared/spec/FEATURES.md'})",
        "README.md: link 'docs/also-missing.md': no file docs/also-missing.md",
    ]
    assert outside_references(tmp_path / "README.md", tmp_path) == [
        "README.md:6: mentions '../shared', which users of the repository cannot see",
        "README.md:6: mentions 'shared/spec', which users of the repository cannot see",
        "README.md:15: mentions '../shared', which users of the repository cannot see",
        "README.md:15: mentions 'shared/spec', which users of the repository cannot see",
    ]
