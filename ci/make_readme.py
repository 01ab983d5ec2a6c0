"""Render README.md from nbs/index.ipynb (nbdev's own README rendering needs quarto, which
cannot be installed offline). Markdown cells are copied; visible code cells become ```python
blocks; cells starting with `#| hide` are skipped."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path: Path) -> str:
    cells = json.loads(nb_path.read_text())["cells"]
    parts = ["<!-- generated from nbs/index.ipynb by ci/make_readme.py: edit the notebook, not this file -->"]
    for c in cells:
        src = "".join(c["source"]).strip()
        if not src or src.startswith("#| hide"): continue
        if c["cell_type"] == "markdown": parts.append(src)
        elif c["cell_type"] == "code":
            parts.append("```python\n" + "\n".join(l for l in src.splitlines() if not l.startswith("#|")) + "\n```")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    (ROOT / "README.md").write_text(render(ROOT / "nbs" / "index.ipynb"))
