"""The notebook's TFMA widgets and the HTML report in a real browser: headless Chromium, Selenium.

The notebook runs in the project's own notebook server (the classic UI that `make notebook` opens,
with the nbextensions `make venv` enables in .venv) on a copy of the notebook, so the repository's
file is never saved over. One Run All must leave both TFMA widgets in the page, upgraded by TFMA's
scripts, with a visible size and no widget error. The report written by `alexnet-tfx report` must
load every image without a console error.

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`); the tests
skip where either is missing. Selenium is given the driver's path, so Selenium Manager never
downloads anything. No internet is needed: offline, TFMA's widgets draw their controls but not
their Google Charts, whose failed downloads (and only those) the console checks allow.

The runs are the session's sample runs (three evaluations: the time series has three points).
Screenshots go into `$ALEXNET_TFX_SCREENSHOTS` when set, else into pytest's tmp_path. In CI
(`CI=true`, where `.ci/run` installs Chromium) a missing browser is an error, not a skip.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO, run_cli

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
for _path in (CHROMIUM, CHROMEDRIVER):
    if not os.access(_path, os.X_OK):
        _missing = f"{_path} is missing: apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"{_missing} (CI must run the browser tests)")
        pytest.skip(_missing, allow_module_level=True)
pytest.importorskip("selenium", reason="selenium is not installed (it is in requirements.lock)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

pytestmark = pytest.mark.e2e

NOTEBOOK = os.path.join(REPO, "notebooks", "inspect_evaluation.ipynb")
WIDGETS = ("tfma-nb-slicing-metrics", "tfma-nb-time-series")
WIDGET_ERRORS = (
    "Error displaying widget",
    "Error rendering Jupyter widget",
    "A Jupyter widget could not be displayed",
)
# What TFMA's widgets fetch from the internet (Google Charts, Google Fonts): offline, these fail.
INTERNET = ("https://www.gstatic.com/", "https://fonts.googleapis.com/")
RUN_ALL_TIMEOUT = 900
# notebook 6.5.7's page.html (the last classic release) adds, on every page, a click listener to
# the banner's "Don't show anymore" button, which it renders only when show_banner is true: with
# the banner off (the Makefile's NBCONF), that inline script throws this, and does nothing else.
BANNER_OFF_ERROR = "Uncaught TypeError: Cannot read properties of null (reading 'addEventListener')"

# Records what the console log shows only as a location: uncaught errors with their source, and
# unhandled promise rejections with their reason (TFMA's chart loader rejects with an Event).
_RECORD_PAGE_ERRORS = """
window.__pageErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__pageErrors.push({kind: 'error', message: String(e.message || ''),
                            url: t.src || t.href || e.filename || ''});
}, true);
window.addEventListener('unhandledrejection', function (e) {
  var r = e.reason, t = (r && r.target) || {};
  window.__pageErrors.push({kind: 'rejection', message: String(r && (r.stack || r.message) || r),
                            url: t.src || t.href || ''});
});
"""


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> str:
    directory = os.environ.get("ALEXNET_TFX_SCREENSHOTS") or str(
        tmp_path_factory.mktemp("screenshots")
    )
    os.makedirs(directory, exist_ok=True)
    return directory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _enabled_nbextensions() -> dict:
    path = os.path.join(sys.prefix, "etc", "jupyter", "nbconfig", "notebook.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("load_extensions", {})


class NotebookServer:
    def __init__(self, url: str, token: str, log: str):
        self.url, self.token, self.log = url, token, log

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def page(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"


@pytest.fixture(scope="module")
def notebook_server(sample_runs, tmp_path_factory):
    """`make notebook`'s server on 127.0.0.1, a free port and a token, over a copy of the notebook.

    Jupyter's per-user directories point into tmp_path, so only the venv's configuration (the
    nbextensions `make venv` enabled) is in play, never ~/.jupyter's."""
    enabled = _enabled_nbextensions()
    for extension in ("tensorflow_model_analysis/extension", "tfma_widget_fixes"):
        assert enabled.get(extension), f"{extension} is not enabled in {sys.prefix}: run make venv"
    home = tmp_path_factory.mktemp("jupyter")
    work = home / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "ALEXNET_TFX_PIPELINE_ROOT": sample_runs.first.root,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("ALEXNET_TFX_RUN_ID", None)  # the latest run
    command = [
        *(sys.executable, "-m", "notebook", "--no-browser", "--ip=127.0.0.1"),
        *(f"--port={port}", "--port-retries=0", f"--NotebookApp.token={token}"),
        f"--notebook-dir={work}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = NotebookServer(f"http://127.0.0.1:{port}", token, str(log_path))
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the notebook server exited:\n{log_path.read_text()[-3000:]}")
            try:
                server.api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"no /api/status in 180 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, and in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.set_script_timeout(60)
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_PAGE_ERRORS}
        )
        yield driver
    finally:
        driver.quit()


def _wait(driver, script: str, timeout: float, what: str, interval: float = 0.5):
    """Polls `script` (a JS expression) until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _banner_off_error(message: str, url: str) -> bool:
    """BANNER_OFF_ERROR, thrown by the notebook page itself (its inline script, not a file)."""
    page = url.split("?")[0]
    return message.endswith(BANNER_OFF_ERROR) and "/notebooks/" in page and not page.endswith(".js")


def _unexpected_errors(driver) -> list[str]:
    """Console errors and page errors, less the failed downloads from the internet and the
    notebook page's own error with the banner off."""
    page_errors = driver.execute_script("return window.__pageErrors || [];")
    unexpected = [
        f"page {e['kind']}: {e['message'][:500]} {e['url']}"
        for e in page_errors
        if not (e["url"].startswith(INTERNET) and e["kind"] in ("error", "rejection"))
        and not _banner_off_error(e["message"], e["url"])
    ]
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        message = entry["message"]
        if any(url in message for url in INTERNET):
            continue  # "https://www.gstatic.com/charts/loader.js - Failed to load resource"
        location, _, text = message.partition(" ")
        # An unhandled rejection shows as its location alone; the page errors above name it.
        if not text.strip() or text.strip() == "0:0" or _banner_off_error(text, location):
            continue
        unexpected.append(f"console: {message[:500]}")
    return unexpected


_RUN_STATE = """
var cells = Jupyter.notebook.get_cells().filter(function (c) {
  return c.cell_type === 'code' && c.get_text().trim();
});
var errors = Array.from(document.querySelectorAll('.output_error')).map(function (e) {
  return e.innerText.slice(0, 2000);
});
return {
  cells: cells.length,
  done: cells.filter(function (c) { return typeof c.input_prompt_number === 'number'; }).length,
  errors: errors,
  idle: !!document.querySelector('#kernel_indicator_icon.kernel_idle_icon'),
};
"""

_WIDGET_STATE = """
return arguments[0].map(function (name) {
  return Array.from(document.querySelectorAll(name)).map(function (el) {
    var box = el.getBoundingClientRect();
    var area = el.closest('.output_subarea');
    return {
      width: box.width, height: box.height,
      upgraded: customElements.get(name) !== undefined && !!el.shadowRoot
        && el.shadowRoot.querySelectorAll('*').length > 0,
      shown: !!area && getComputedStyle(area).display !== 'none' && el.offsetParent !== null,
    };
  });
});
"""


def _open_fresh(driver, server: NotebookServer) -> None:
    """The notebook in a new kernel: the previous page left, its kernels shut down."""
    driver.execute_script("window.onbeforeunload = null;")
    driver.get("about:blank")
    for session in server.api("/api/sessions"):
        server.api(f"/api/sessions/{session['id']}", method="DELETE")
    driver.get_log("browser")  # drop earlier pages' entries
    driver.get(server.page("/notebooks/inspect_evaluation.ipynb"))


@pytest.mark.parametrize("when", ["kernel-starting", "kernel-idle"])
def test_both_tfma_widgets_render_after_one_run_all(notebook_server, browser, screenshots, when):
    """Run All as a user would: at once, while the kernel starts, or once it is idle."""
    _open_fresh(browser, notebook_server)
    ready = "window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
    if when == "kernel-starting":
        _wait(browser, f"{ready} && Jupyter.notebook.get_cells().length", 120, "the notebook", 0.05)
    else:
        _wait(
            browser,
            f"{ready} && Jupyter.notebook.kernel.is_connected()"
            " && document.querySelector('#kernel_indicator_icon.kernel_idle_icon')",
            120,
            "an idle kernel",
        )
    browser.execute_script("Jupyter.notebook.execute_all_cells();")  # Cell > Run All

    deadline = time.monotonic() + RUN_ALL_TIMEOUT
    while True:
        state = browser.execute_script(_RUN_STATE)
        assert not state["errors"], "a cell failed:\n" + "\n".join(state["errors"])
        if state["done"] == state["cells"] and state["idle"]:
            break
        assert time.monotonic() < deadline, f"Run All unfinished after {RUN_ALL_TIMEOUT} s: {state}"
        time.sleep(1)

    # Widget views render after their cell's output arrives: give TFMA's elements time to draw.
    deadline = time.monotonic() + 120
    while True:
        found = browser.execute_script(_WIDGET_STATE, list(WIDGETS))
        drawn = all(len(f) == 1 and f[0]["width"] > 0 and f[0]["height"] > 0 for f in found)
        if drawn or time.monotonic() > deadline:
            break
        time.sleep(1)
    for name in WIDGETS:
        for element in browser.find_elements("css selector", name):
            element.screenshot(os.path.join(screenshots, f"{name}-{when}.png"))
    text = browser.execute_script("return document.getElementById('notebook').innerText;")
    height = browser.execute_script("return document.getElementById('notebook').scrollHeight;")
    browser.set_window_size(1400, height + 200)
    browser.save_screenshot(os.path.join(screenshots, f"notebook-{when}.png"))
    browser.set_window_size(1400, 1000)

    for name, elements in zip(WIDGETS, found, strict=True):
        assert len(elements) == 1, f"{name}: {len(elements)} in the page, want 1"
        (widget,) = elements
        assert widget["upgraded"], f"{name} was not drawn by TFMA's script: {widget}"
        assert widget["shown"], f"{name}'s output is hidden: {widget}"
        assert widget["width"] >= 300 and widget["height"] >= 100, f"{name}: {widget}"
    for error in WIDGET_ERRORS:
        assert error not in text
    assert _unexpected_errors(browser) == []
    # No banner urging the move to Notebook 7, which loads none of TFMA's widgets (the venv's
    # jupyter_notebook_config.json, written by the Makefile).
    header = browser.execute_script("return document.getElementById('header').innerText;")
    assert (
        "Notebook 7" not in header and browser.find_elements("css selector", "#newsId .alert") == []
    )


def test_the_html_report_loads_every_image(sample_runs, browser, screenshots, tmp_path):
    output = tmp_path / "report.html"
    first = sample_runs.first
    result = run_cli(
        "report", "--pipeline-root", first.root, "--run-id", first.run_id, "--output", str(output)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    browser.get("about:blank")
    browser.get_log("browser")
    browser.get(output.as_uri())
    _wait(browser, "document.readyState === 'complete'", 60, "the report to load")
    images = browser.execute_script(
        "return Array.from(document.images).map(function (i) {"
        "  return {alt: i.alt, complete: i.complete, width: i.naturalWidth};"
        "});"
    )
    assert len(images) == 4  # per class, confusion matrix, training curves, metric history
    for image in images:
        assert image["complete"] and image["width"] > 0, image
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(1400, height)
    browser.save_screenshot(os.path.join(screenshots, "report.png"))
    browser.set_window_size(1400, 1000)
    page_errors = browser.execute_script("return window.__pageErrors || [];")
    console = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert page_errors == [] and console == []
