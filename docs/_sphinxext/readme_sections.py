"""Turn a section of README.md into reStructuredText for the docs.

The benchmark tables live in README.md (one source of truth, written by the
benchmark scripts' authors); the Performance page includes them from here so
the two never disagree. Handles what the README uses: paragraphs, inline
code, links, bullet lists, fenced code blocks and pipe tables.
"""

import re


def extract_section(markdown, title):
    """Body of the level-2 section ``## title`` (without its heading), or None."""
    lines = markdown.splitlines()
    body, inside = [], False
    for line in lines:
        if line.startswith("## "):
            if inside:
                break
            inside = line[3:].strip().lower() == title.lower()
            continue
        if inside:
            body.append(line)
    return "\n".join(body).strip("\n") if inside or body else None


def _inline(text):
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"`\1 <\2>`__", text)
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"**\1**", text)
    return text


def _table(rows):
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    header, body = cells[0], [r for r in cells[2:]]
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        row = row + [""] * (len(header) - len(row))
        out.append("   * - " + (_inline(row[0]) or r"\ "))
        out.extend("     - " + (_inline(c) or r"\ ") for c in row[1 : len(header)])
    return out


def markdown_to_rst(markdown):
    """Convert the small markdown subset README.md uses to reStructuredText."""
    out, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^```(\w*)", line)
        if fence:
            lang = fence.group(1) or "text"
            out += [f".. code-block:: {lang}", ""]
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append("   " + lines[i])
                i += 1
            out.append("")
            i += 1
            continue
        if line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += [""] + _table(rows) + [""]
            continue
        heading = re.match(r"^(#{3,6})\s+(.*)", line)
        if heading:
            title = _inline(heading.group(2).strip())
            marks = {3: "~", 4: "^", 5: '"', 6: "'"}[len(heading.group(1))]
            out += ["", title, marks * len(title), ""]
            i += 1
            continue
        out.append(_inline(line))
        i += 1
    return "\n".join(out) + "\n"
