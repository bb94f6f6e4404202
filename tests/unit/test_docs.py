"""The repository documents itself: no pointer outside it, and no link in its docs that dangles.

Every tracked text file is read as git lists it, so a new file is checked the day it is added.
The forbidden phrases are assembled from parts, so that this file does not name them itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pytest

from shared import constants as c
from shared.domain.documents import MAX_DEPTH
from shared.domain.frames import FRAME_LIMIT_BYTES
from shared.domain.models import DEFAULT_MAX_PAUSE_SECONDS
from shared.services.jobs import MAX_REPLAY_MESSAGES
from shared.services.websocket import MAX_CLIENT_FRAME_BYTES

ROOT: Final = Path(__file__).resolve().parents[2]
# Documents that live outside this repository, and the way code used to cite their sections.
FORBIDDEN: Final = (
    "../" + "shared",
    "/work/" + "shared",
    "DESIGN" + ".md",
    "AWS_LOCAL" + "_NOTES",
    "DESIGN" + " §",
)
MARKDOWN_LINK: Final = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED_BLOCK: Final = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE_CODE: Final = re.compile(r"`[^`\n]*`")
HEADING: Final = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
# Figures the docs state, written from the constants the code runs on (whitespace-insensitive).
FIGURES: Final = (
    ("protocol.md", f"at most {FRAME_LIMIT_BYTES // 1024} KB each"),
    ("protocol.md", f"each is at most {MAX_CLIENT_FRAME_BYTES // 1024} KB"),
    ("protocol.md", f"larger than {MAX_REPLAY_MESSAGES:,} messages"),
    ("protocol.md", f"every {c.DEFAULT_PROGRESS_MIN_INTERVAL_MS} ms"),
    ("protocol.md", f"expire {c.MESSAGE_TTL_SECONDS // 3600} hours after they are written"),
    ("protocol.md", f"valid {c.DEFAULT_RESUME_TOKEN_TTL_SECONDS // 3600} hours"),
    ("http-api.md", f"more than {c.DEFAULT_WRITE_RATE_PER_MINUTE} in a minute"),
    ("http-api.md", f"at most {c.DEFAULT_MAX_BODY_BYTES // 1024} KB (413)"),
    ("http-api.md", f"remembers the answer for {c.DEFAULT_IDEMPOTENCY_TTL_SECONDS // 3600} hours"),
    ("http-api.md", f"nesting at most {MAX_DEPTH} deep"),
    ("architecture.md", f"Each tenant may have {c.DEFAULT_MAX_RUNNING_PER_TENANT} jobs"),
    ("architecture.md", f"({c.DEFAULT_BATCH_SIZE} items by default"),
    ("architecture.md", f"After {c.DEFAULT_BATCHES_PER_EXECUTION:,} batches"),
    ("architecture.md", f"about {c.DEFAULT_EVENTS_PER_EXECUTION:,} history events"),
    ("architecture.md", f"stop at {c.STANDARD_MAX_HISTORY_EVENTS:,} history events"),
    ("architecture.md", f"in {c.MAX_EXECUTION_ATTEMPTS} executions fails `launch_failed`"),
    ("architecture.md", f"`PushGrace` ({c.DEFAULT_PUSH_GRACE_SECONDS} s by default)"),
    ("architecture.md", f"({c.SCHEDULED_JOB_OVERDUE_SECONDS // 60} minutes past due)"),
    ("architecture.md", f"(default {DEFAULT_MAX_PAUSE_SECONDS // 86400} days,"),
)


def tracked_files(root: Path) -> list[str]:
    git = shutil.which("git")
    assert git is not None, "git is needed to list the tracked files"
    listed = subprocess.run(  # noqa: S603 - a fixed command, no input from outside
        [git, "ls-files", "-z"], cwd=root, capture_output=True, check=True, text=True
    )
    return [name for name in listed.stdout.split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file (or one deleted from the work tree)."""
    if not path.is_file():
        return None
    raw = path.read_bytes()
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_mentions(root: Path, names: Iterable[str]) -> list[str]:
    """`path:line: phrase` for every forbidden phrase in the named files."""
    found: list[str] = []
    for name in names:
        text = text_of(root / name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            found.extend(f"{name}:{number}: {phrase}" for phrase in FORBIDDEN if phrase in line)
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    plain = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    text = FENCED_BLOCK.sub("", path.read_text(encoding="utf-8"))
    return {slug(heading) for heading in HEADING.findall(text)}


def relative_links(path: Path) -> list[str]:
    """Link targets outside code, without the web's (`http:`, `mailto:`, ...)."""
    text = INLINE_CODE.sub("", FENCED_BLOCK.sub("", path.read_text(encoding="utf-8")))
    targets = MARKDOWN_LINK.findall(text)
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def broken_links(path: Path) -> list[str]:
    """Each relative link of a Markdown file whose file, or heading, does not exist."""
    broken: list[str] = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            broken.append(f"{target}: no heading with that anchor")
    return broken


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def test_no_tracked_file_points_outside_the_repository() -> None:
    # Given every tracked text file / When searched / Then none cites the team's own documents
    assert outside_mentions(ROOT, tracked_files(ROOT)) == []


def test_the_check_finds_each_forbidden_phrase(tmp_path: Path) -> None:
    # Given a file holding each phrase, and a binary one / When checked
    (tmp_path / "notes.py").write_text("\n".join(f"# see {p}" for p in FORBIDDEN) + "\n")
    (tmp_path / "blob.bin").write_bytes(b"\0" + FORBIDDEN[0].encode())
    found = outside_mentions(tmp_path, ["notes.py", "blob.bin", "deleted.md"])
    # Then each phrase is reported on its own line, and the binary and missing files are skipped
    assert found == [f"notes.py:{n}: {p}" for n, p in enumerate(FORBIDDEN, start=1)]


@pytest.mark.parametrize(("name", "figure"), FIGURES, ids=[figure for _, figure in FIGURES])
def test_the_docs_state_the_figures_the_code_uses(name: str, figure: str) -> None:
    # Given a figure built from the constant the code runs on / When the doc is read
    text = " ".join((ROOT / "docs" / name).read_text(encoding="utf-8").split())
    # Then the doc states exactly that figure
    assert figure in text


def test_the_docs_exist() -> None:
    names = {path.name for path in documents(ROOT)}
    assert {
        "README.md",
        "architecture.md",
        "protocol.md",
        "http-api.md",
        "operations.md",
        "local-stack.md",
    } <= names


@pytest.mark.parametrize("document", documents(ROOT), ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path) -> None:
    # Given a Markdown document of the repository / When its relative links are followed
    # Then each reaches a file, and a heading where it names one
    assert broken_links(document) == []


def test_a_dangling_link_is_reported(tmp_path: Path) -> None:
    # Given links to a missing file, a missing heading and good targets, and links in code
    (tmp_path / "other.md").write_text("# Other page\n\n## Error `codes`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere) [good](other.md#error-codes)\n"
        "[self](#page) [web](https://example.com/x.md) `[code](nope.md)`\n"
        "```\n[fenced](nope.md)\n```\n"
    )
    # When checked / Then exactly the two dangling ones are reported
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with that anchor",
    ]
