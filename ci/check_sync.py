"""Fail when the exported package, the notebooks' cleanliness or the README drift from their sources.

1. `jepa_nb/` must equal a fresh `nbdev-export` of `nbs/` (the notebooks are the source of truth).
2. Every notebook must already be clean (`nbdev-clean` changes nothing), and each experiment
   notebook keeps exactly one papermill `parameters` cell after cleaning.
3. `README.md` must equal what `ci/make_readme.py` renders from `nbs/index.ipynb`, and
   `data/reference/RESULTS.md` what `ci/make_results.py` renders from the cpu references.
The check leaves the freshly exported/cleaned files in place, so `git diff` shows the fix.
"""
import difflib, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snapshot(paths):
    return {p: p.read_bytes() for p in paths}


def changed(before, after_paths):
    after = snapshot(after_paths)
    return sorted(str(p.relative_to(ROOT)) for p in set(before) | set(after) if before.get(p) != after.get(p))


def show(before, path):
    old = before.get(path, b"").decode(errors="replace").splitlines()
    new = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(list(difflib.unified_diff(old, new, str(path), str(path), lineterm=""))[:40])


def generated(path: Path, script: str, name: str, source: str) -> bool:
    "Re-render `path` with ci/`script`; False (and the diff) when it differed from what `source` renders."
    before = snapshot([path])
    subprocess.run([sys.executable, str(ROOT / "ci" / script)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    if changed(before, [path]):
        print(f"FAIL {name}: {path.relative_to(ROOT)} differed from {source}; regenerated now (commit it).")
        print(show(before, path))
        return False
    print(f"ok   {name}: {path.relative_to(ROOT)} matches {source}")
    return True


def main() -> int:
    ok = True
    lib = lambda: sorted((ROOT / "jepa_nb").rglob("*.py"))
    before = snapshot(lib())
    subprocess.run([str(BIN / "nbdev-export")], cwd=ROOT, check=True)
    diff = changed(before, lib())
    if diff:
        ok = False
        print(f"FAIL export: jepa_nb/ differed from the notebooks in {diff}; re-exported now (commit it).")
        for p in diff[:3]: print(show(before, ROOT / p))
    else:
        print("ok   export: jepa_nb/ matches the notebooks")

    nbs = lambda: sorted((ROOT / "nbs").glob("*.ipynb"))
    before = snapshot(nbs())
    subprocess.run([str(BIN / "nbdev-clean")], cwd=ROOT, check=True)
    diff = changed(before, nbs())
    if diff:
        ok = False
        print(f"FAIL clean: notebooks were not clean: {diff}; cleaned now (commit it).")
    else:
        print("ok   clean: notebooks are clean")

    experiments = [nb for nb in nbs() if nb.name[:2].isdigit() and int(nb.name[:2]) >= 10]
    bad = {}
    for nb in experiments:
        cells = json.loads(nb.read_text())["cells"]
        n = sum("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
        if n != 1: bad[nb.name] = n
    if bad:
        ok = False
        print(f"FAIL params: cells tagged 'parameters' per experiment notebook (need exactly 1): {bad}")
    else:
        print(f"ok   params: {len(experiments)} experiment notebooks keep their one `parameters` cell")

    ok &= generated(ROOT / "README.md", "make_readme.py", "readme", "nbs/index.ipynb")
    ok &= generated(ROOT / "data" / "reference" / "RESULTS.md", "make_results.py", "results", "the cpu references")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
