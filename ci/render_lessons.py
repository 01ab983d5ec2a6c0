"""Execute the lessons and keep only their figures, so that a lesson read on GitHub (or before running it) shows them.

Each lesson `nbs/0*.ipynb` is run top to bottom in a fresh kernel (in `nbs/`, like nbdev-test); every output that is
not a PNG figure is dropped (text, warnings, widgets, timings: they would change from run to run), execution counts
are cleared, and `nbdev-clean` normalises the file. The figures are deterministic on CPU for a given torch and
matplotlib. Run it after changing a lesson (`make render`); `ci/check_sync.py` passes either way (export and clean
do not look at outputs).

Usage: python ci/render_lessons.py [LESSON ...]     (default: every lesson)
"""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def keep_figures(nb, nbformat) -> int:
    "Drop every output but PNG figures (keeping only their image/png data); return how many figures remain."
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        outs = []
        for o in cell.get("outputs", []):
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {}):
                outs.append(nbformat.v4.new_output("display_data", data={"image/png": o["data"]["image/png"]}))
        cell["outputs"], cell["execution_count"] = outs, None
        n += len(outs)
    return n


def main(argv=None) -> int:
    import nbformat
    from nbclient import NotebookClient
    names = (argv if argv is not None else sys.argv[1:]) or [p.name for p in sorted((ROOT / "nbs").glob("0*.ipynb"))]
    os.environ.update(JEPA_NB_PROGRESS="0", MPLBACKEND="module://matplotlib_inline.backend_inline")
    for name in names:
        path = ROOT / "nbs" / Path(name).name
        t0 = time.time()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        n = keep_figures(nb, nbformat)
        nbformat.write(nb, path)
        subprocess.run([str(Path(sys.executable).parent / "nbdev-clean"), "--fname", str(path)], cwd=ROOT, check=True)
        print(f"{path.name}: {n} figures kept, {path.stat().st_size / 1024:.0f} KiB, {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
