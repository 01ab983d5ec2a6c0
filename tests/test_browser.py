"""The course in JupyterLab in a real browser: a lesson opened in headless Chromium runs top to bottom with no error
output and draws its figure.

One `jupyter lab` (token, OS-chosen port, headless, `--expose-app-in-browser`) serves temporary copies of the
notebooks; one headless Chromium, driven by Selenium through the system chromedriver, loads JupyterLab once and, for
each notebook, opens it with `docmanager:open`, runs `notebook:run-all-cells` on that widget, and waits (at most
`RUN_TIMEOUT` seconds) until the run has finished, every non-empty code cell has an execution count (or a cell
failed) and the kernel is idle. `check_notebook` then fails on any error output (quoting the cell) and when no
PNG figure is on the page; the second test proves it does both on a tiny notebook that raises and draws nothing.
On failure a screenshot, the page's error text and the browser console go to pytest's tmp_path.

Skipped when Chromium, chromedriver or selenium is missing (`make browser`, part of `make setup`, installs Chromium
as root with apt-get). `JEPA_NB_CHROMIUM` / `JEPA_NB_CHROMEDRIVER` point the test at other binaries (a missing path
shows the skip). Teardown quits Chromium and shuts the server down through its API, then kills whatever is left:
every process whose command line names this test's temporary folder. If pytest itself is killed (no teardown),
jupyter lab and chromedriver die with it (PR_SET_PDEATHSIG), the kernels and Chromium with them.
"""
import ctypes, json, os, re, secrets, shlex, shutil, signal, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("JEPA_NB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JEPA_NB_CHROMEDRIVER", "/usr/bin/chromedriver")
LESSON = "00_core.ipynb"      # the fastest lesson that draws a figure (≈4 s under nbdev-test)
LAB_TIMEOUT = 90              # s: jupyter lab answering its API, JupyterLab restored in the page
RUN_TIMEOUT = 240             # s: one notebook opened, its kernel started and every cell run (a busy 2-core machine)
FIGURE_TIMEOUT = 15           # s: PNG outputs of a finished run decoded into <img> elements

INSTALL_HINT = "run `make setup` (or `make browser`) as root, or `apt-get install chromium chromium-driver`"
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    missing = " and ".join(p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK))
    pytest.skip(f"Chromium not installed ({missing} missing): {INSTALL_HINT}", allow_module_level=True)
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium not installed: `.venv/bin/pip install -c ci/constraints.txt -e '.[dev]'`")
from selenium.webdriver.chrome.service import Service  # noqa: E402

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # the server is on localhost
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --- processes ------------------------------------------------------------------------------------------------------
def _pids_mentioning(marker: str) -> list[int]:
    "Live processes (other than this one) whose command line contains `marker`."
    pids = []
    if not Path("/proc").is_dir(): return pids
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid(): continue
        try: cmd = (d / "cmdline").read_bytes()
        except OSError: continue
        if marker.encode() in cmd: pids.append(int(d.name))
    return pids


def _die_with_parent() -> None:
    """In a child, before exec: SIGKILL it when pytest dies without a teardown (SIGKILL, SIGTERM), by Linux's
    PR_SET_PDEATHSIG. The server's ipykernels exit by themselves when it is gone; Chromium follows chromedriver."""
    try: ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # SIGKILL: a SIGTERMed jupyter server can hang shutting down
    except Exception: pass


def _kill_strays(marker: str, timeout: float = 5.0) -> None:
    "SIGTERM, then SIGKILL, every process whose command line names `marker` (our temporary folder)."
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_mentioning(marker):
            try: os.kill(pid, sig)
            except ProcessLookupError: pass
        end = time.monotonic() + timeout
        while _pids_mentioning(marker) and time.monotonic() < end: time.sleep(0.1)
        if not _pids_mentioning(marker): return


# --- jupyter lab ----------------------------------------------------------------------------------------------------
LAB_SETTINGS = {   # JupyterLab user settings for the test: every cell in the DOM, no news/update requests
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def _api(lab: dict, path: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(lab["url"] + path, method=method, headers={"Authorization": f"token {lab['token']}"})
    with NO_PROXY.open(req, timeout=timeout) as r: return r.status, r.read()


def _log_tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    "This module's temporary folder; every process the tests start names it on its command line."
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def lab(work):
    "A headless `jupyter lab` on 127.0.0.1 with a random token and an OS-chosen port, serving `work/nbs`."
    nbs, runtime, settings = work / "nbs", work / "runtime", work / "lab-settings"
    nbs.mkdir(); runtime.mkdir()
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    token, log = secrets.token_hex(16), work / "jupyter-lab.log"
    # no user config, kernelspecs or extensions: the kernel is this venv's python3 (ipykernel's own), plots inline
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JUPYTER_TOKEN", "JUPYTER_PATH")}
    env.update(JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
               JUPYTER_DATA_DIR=str(work / "jupyter-data"), IPYTHONDIR=str(work / "ipython"),
               OMP_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [str(BIN / "jupyter"), "lab", f"--ServerApp.root_dir={nbs}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port=0", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           "--ServerApp.open_browser=False", "--expose-app-in-browser", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={work / 'lab-workspaces'}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
           "--ServerApp.terminals_enabled=False"] + (["--allow-root"] if os.geteuid() == 0 else [])
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=nbs, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent)
    info = {"proc": proc, "token": token, "nbs": nbs, "log": log}
    try:
        end = time.monotonic() + LAB_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode} before it served:\n{_log_tail(log)}")
            if time.monotonic() > end:
                pytest.fail(f"jupyter lab did not answer within {LAB_TIMEOUT} s:\n{_log_tail(log)}")
            found = sorted(runtime.glob(f"jpserver-{proc.pid}.json"))
            if found and "url" not in info:
                try: info["url"] = json.loads(found[0].read_text())["url"].rstrip("/")
                except (ValueError, KeyError): pass
            if "url" in info:
                try:
                    if _api(info, "/api/status")[0] == 200: break
                except OSError: pass
            time.sleep(0.2)
        yield info
    finally:
        if "url" in info:
            try: _api(info, "/api/shutdown", method="POST")      # stops the kernels, then the server
            except OSError: pass
        try: proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try: proc.wait(timeout=5)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        _kill_strays(f"{work}{os.sep}")   # kernels live in their own sessions; their connection files are in work/


# --- chromium -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(work, lab):
    "Headless Chromium with JupyterLab loaded and restored (`window.jupyterapp`)."
    opts = webdriver.ChromeOptions()
    # with Service's path too, selenium-manager never runs (it would try to download a browser and a driver)
    opts.binary_location = CHROMIUM
    if shutil.which("setpriv"):   # Chromium outlives a killed chromedriver: make it exit with its parent too
        wrapper = work / "chromium-dies-with-driver"
        wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("setpriv")} --pdeathsig TERM {shlex.quote(CHROMIUM)} "$@"\n')
        wrapper.chmod(0o755)
        opts.binary_location = str(wrapper)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--no-proxy-server", "--window-size=1400,1000",
                 f"--user-data-dir={work / 'chromium-profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(work / "chromedriver.log"),   # crash reports: not in ~/.config
                      env={**os.environ, "XDG_CONFIG_HOME": str(work / "xdg-config")},
                      popen_kw={"start_new_session": True, "preexec_fn": _die_with_parent})
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=opts)
        driver.set_script_timeout(30)
        driver.get(f"{lab['url']}/lab?token={lab['token']}")
        end = time.monotonic() + LAB_TIMEOUT
        driver.execute_script("""
            window.__jepa = {restored: false, runs: {}};
            (async () => {
              while (!window.jupyterapp) await new Promise(r => setTimeout(r, 100));
              await window.jupyterapp.restored; window.__jepa.restored = true;
            })();""")
        while not driver.execute_script("return window.__jepa.restored"):
            if time.monotonic() > end:
                shot = _save_page(driver, work, "lab-load")
                pytest.fail(f"JupyterLab did not load within {LAB_TIMEOUT} s (see {shot}); server log:\n"
                            f"{_log_tail(lab['log'])}")
            time.sleep(0.2)
        yield driver
    finally:
        if driver is not None:
            try: driver.quit()
            except Exception: pass
        if service.process is not None and service.process.poll() is None:
            try: os.killpg(service.process.pid, signal.SIGKILL)
            except ProcessLookupError: pass
        _kill_strays(str(work / "chromium-profile"))
        shutil.rmtree(work / "chromium-profile", ignore_errors=True)   # ≈10 MB; pytest keeps 3 old tmp folders


# --- running a notebook in the page ---------------------------------------------------------------------------------
START_RUN = """
const [path, key] = arguments;
const run = window.__jepa.runs[key] = {state: 'opening', ok: null, error: null, widgetId: null};
(async () => {
  const app = window.jupyterapp;
  const w = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  run.widgetId = window.__jepa.lastWidget = w.id;
  await w.context.ready; await w.sessionContext.ready;
  run.state = 'running';
  run.ok = await app.commands.execute('notebook:run-all-cells', {widgetId: w.id, activate: true});
  run.state = 'ran';
})().catch(e => { run.state = 'failed'; run.error = String(e && e.stack || e); });
"""

POLL_RUN = """
const run = window.__jepa.runs[arguments[0]];
const app = window.jupyterapp;
const w = run.widgetId && Array.from(app.shell.widgets('main')).find(w => w.id === run.widgetId);
const kernel = w && w.sessionContext.session && w.sessionContext.session.kernel;
const cells = [];
if (w && w.model) for (let i = 0; i < w.model.cells.length; i++) {
  const c = w.model.cells.get(i);
  if (c.type !== 'code') continue;
  const outputs = [];
  for (let j = 0; j < c.outputs.length; j++) {
    const o = c.outputs.get(j).toJSON();
    outputs.push({type: o.output_type, ename: o.ename, evalue: o.evalue, traceback: o.traceback,
                  png: !!(o.data && o.data['image/png'])});
  }
  cells.push({index: i, source: c.sharedModel.getSource(), count: c.executionCount, outputs});
}
const imgs = w ? Array.from(w.node.querySelectorAll('.jp-OutputArea-output img'))
                   .filter(im => im.src.startsWith('data:image/png') && im.complete && im.naturalWidth > 0) : [];
return {state: run.state, ok: run.ok, error: run.error, kernel: kernel ? kernel.status : null, cells,
        images: imgs.map(im => [im.naturalWidth, im.naturalHeight])};
"""


def _save_page(driver, folder: Path, name: str, extra: str = "") -> Path:
    "Screenshot, error text on the page and the browser console, as `folder/name.{png,txt}`; returns the .png."
    shot = folder / f"{name}.png"
    try: driver.save_screenshot(str(shot))
    except Exception as e: extra += f"\n(screenshot failed: {e})"
    try:
        page = driver.execute_script("""return Array.from(document.querySelectorAll(
            '[data-mime-type="application/vnd.jupyter.stderr"], .jp-Dialog, .jp-toast-message'))
            .map(e => e.innerText).join('\\n----\\n')""")
    except Exception as e: page = f"(could not read the page: {e})"
    try: console = "\n".join(f"{m['level']} {m['message']}" for m in driver.get_log("browser"))
    except Exception as e: console = f"(no browser log: {e})"
    (folder / f"{name}.txt").write_text(f"{extra}\n\n== error text on the page ==\n{page}\n\n"
                                        f"== browser console ==\n{console}\n")
    return shot


def run_notebook(driver, path: str, artifacts: Path, timeout: float = RUN_TIMEOUT) -> dict:
    "Open `path` (relative to the server's root) in JupyterLab, run all cells, return the cells and rendered images."
    key = f"{path}-{time.monotonic_ns()}"
    driver.execute_script(START_RUN, path, key)
    end, res = time.monotonic() + timeout, None
    while time.monotonic() < end:
        res = driver.execute_script(POLL_RUN, key)
        if res["state"] == "failed" or res["kernel"] == "dead": break
        todo = [c for c in res["cells"] if c["source"].strip() and c["count"] is None]
        errored = any(o["type"] == "error" for c in res["cells"] for o in c["outputs"])
        if res["state"] == "ran" and res["kernel"] == "idle" and (not todo or errored): break
        time.sleep(0.25)
    else:
        shot = _save_page(driver, artifacts, Path(path).stem, f"timed out; last poll: {json.dumps(res)[:4000]}")
        raise AssertionError(f"{path}: not run within {timeout} s (state {res and res['state']}, kernel "
                             f"{res and res['kernel']}); screenshot {shot}")
    if res["state"] == "failed" or res["kernel"] == "dead":
        why = res["error"] or "its kernel died"
        shot = _save_page(driver, artifacts, Path(path).stem, why)
        raise AssertionError(f"{path}: JupyterLab could not open or run it: {why} (screenshot {shot})")
    want = sum(o["png"] for c in res["cells"] for o in c["outputs"])
    end = time.monotonic() + FIGURE_TIMEOUT      # outputs are in the model; give the page a moment to draw them
    while want and len(res["images"]) < want and time.monotonic() < end:
        time.sleep(0.25); res = driver.execute_script(POLL_RUN, key)
    return res


CLOSE = """
const [id, done] = arguments;
const w = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.id === id);
(w ? w.sessionContext.shutdown().then(() => w.dispose()) : Promise.resolve()).then(() => done(), () => done());
"""


def check_notebook(driver, path: str, artifacts: Path) -> dict:
    "Run `path` in the page; fail, quoting the cell, if a cell errored, a cell did not run or no figure rendered."
    try:
        res = run_notebook(driver, path, artifacts)
        problems = []
        for c in res["cells"]:
            for o in c["outputs"]:
                if o["type"] == "error":
                    tb = ANSI.sub("", "\n".join(o["traceback"] or []))[-2000:]
                    problems.append(f"cell {c['index']} raised {o['ename']}: {o['evalue']}\n"
                                    f"--- cell source ---\n{c['source'][:800]}\n--- traceback ---\n{tb}")
        if not problems:     # after an error, Run All leaves the later cells unrun
            unrun = [c["index"] for c in res["cells"] if c["source"].strip() and c["count"] is None]
            if unrun: problems.append(f"cells {unrun} have no execution count")
        pngs = sum(o["png"] for c in res["cells"] for o in c["outputs"])
        if not res["images"]:
            problems.append(f"no figure rendered: no <img> of a PNG output on the page ({pngs} PNG outputs)")
        elif len(res["images"]) < pngs:
            problems.append(f"{pngs} PNG outputs but only {len(res['images'])} drawn as images on the page")
        if problems:
            shot = _save_page(driver, artifacts, Path(path).stem, "\n\n".join(problems))
            raise AssertionError(f"{path} in JupyterLab:\n" + "\n\n".join(problems) +
                                 f"\n(screenshot {shot}, page text {shot.with_suffix('.txt')})")
        return res
    finally:   # close the notebook and stop its kernel (the lesson's holds torch), passed or failed
        try:
            wid = driver.execute_script("return window.__jepa.lastWidget")
            if wid: driver.execute_async_script(CLOSE, wid)
        except Exception: pass     # a broken page: the fixtures' teardown stops everything


# --- tests ----------------------------------------------------------------------------------------------------------
# plain JSON: importing nbformat costs seconds here (jsonschema builds a grammar on import)
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _copy_lesson(lab: dict, name: str) -> str:
    nb = json.loads((ROOT / "nbs" / name).read_text())
    nb["metadata"]["kernelspec"] = KERNELSPEC
    for c in nb["cells"]:                       # the lessons keep their figures: start from none, so the check sees this run's
        if c["cell_type"] == "code": c["outputs"], c["execution_count"] = [], None
    (lab["nbs"] / name).write_text(json.dumps(nb))
    return name


def test_lesson_runs_in_jupyterlab(lab, browser, tmp_path):
    "The lesson runs top to bottom in JupyterLab in Chromium: every cell ran, none errored, its figure is on the page."
    res = check_notebook(browser, _copy_lesson(lab, LESSON), tmp_path)
    ran = [c for c in res["cells"] if c["source"].strip()]
    assert ran and all(c["count"] is not None for c in ran)
    assert all(w > 0 and h > 0 for w, h in res["images"]), res["images"]


def test_check_fails_on_error_and_missing_figure(lab, browser, tmp_path):
    "The same check on a notebook that raises and draws nothing fails, names the error and the missing figure."
    code = lambda src: {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
    nb = {"nbformat": 4, "nbformat_minor": 4, "metadata": {"kernelspec": KERNELSPEC},
          "cells": [code("x = 1"), code("x / 0  # boom"), code("print('never runs')")]}
    (lab["nbs"] / "_raises.ipynb").write_text(json.dumps(nb))
    with pytest.raises(AssertionError) as e:
        check_notebook(browser, "_raises.ipynb", tmp_path)
    msg = str(e.value)
    assert "cell 1 raised ZeroDivisionError: division by zero" in msg and "x / 0  # boom" in msg, msg
    assert "no figure rendered" in msg, msg
    assert (tmp_path / "_raises.png").stat().st_size > 0
    assert "ZeroDivisionError" in (tmp_path / "_raises.txt").read_text()
