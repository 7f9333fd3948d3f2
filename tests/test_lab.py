"""The README's first command, `sudo scripts/lab.sh`, as a person meets it.

lab.sh runs setup.sh, then JupyterLab as root on notebooks/. Because it is root, the
promises that matter are the ones checked here against what the kernel and the server
show: it listens on 127.0.0.1 only (/proc/net/tcp, see proc(5)), it refuses requests
without its random token, the token is not on the command line (`ps`), a real browser
(headless Chromium) renders a chapter, and Ctrl-C's cousin SIGTERM leaves no server,
no kernel and no listening socket behind.

The tests share one lab (module fixture) and run in file order; the last one
stops it. Jupyter's and Chromium's per-user files go to a temp dir (JUPYTER_*_DIR,
IPYTHONDIR, HOME), so a run leaves nothing in root's home. Traffic: 127.0.0.1 only.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO

LAB_SH = os.path.join(REPO, "scripts", "lab.sh")
CHAPTERS = os.path.join(REPO, "notebooks")
CHAPTER = "01-docker-ecosystem.ipynb"
CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 120        # setup.sh (~1 s) + Jupyter's imports (5-40 s on a loaded 2-core VM)
STOP_TIMEOUT = 30          # the server shuts its kernels down first (~3 s)

# No proxy from the environment may see (or swallow) a request to the lab.
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port):
    """(table, local address in hex) of every LISTEN socket on port, from the kernel's
    tables: /proc/net/tcp{,6}, state 0A is TCP_LISTEN (proc(5))."""
    found = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/net/{table}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                addr, hexport = fields[1].split(":")
                if fields[3] == "0A" and int(hexport, 16) == port:
                    found.append((table, addr))
    return found


def processes_with(marker):
    """{pid: command line} of live processes whose environment holds marker (bytes):
    the server and everything it started, kernels included, whatever their session."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[int(pid)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return found


def get(url, token=None, data=None):
    """(status, body) of a request to the lab; an HTTP error is an answer, not an exception."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with http.open(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Lab:
    """scripts/lab.sh running in its own session, its output in a file."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.root = os.path.join(tmp, "root")
        self.log_path = os.path.join(tmp, "lab.log")
        self.marker = f"MINIDOCKER_ROOT={self.root}".encode()
        env = dict(os.environ, PORT=str(self.port), MINIDOCKER_ROOT=self.root)
        for var, sub in (("JUPYTER_CONFIG_DIR", "jupyter-config"), ("JUPYTER_DATA_DIR", "jupyter-data"),
                         ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("IPYTHONDIR", "ipython")):
            env[var] = os.path.join(tmp, sub)
            os.makedirs(env[var])
        self.runtime_dir = env["JUPYTER_RUNTIME_DIR"]
        os.makedirs(self.root)
        self.t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([LAB_SH], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.token = None
        self.startup = None
        self.base = f"http://127.0.0.1:{self.port}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self):
        deadline = self.t0 + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"lab.sh exited {self.proc.returncode} before serving:\n{self.log()[-3000:]}")
            m = re.search(rf"http://127\.0\.0\.1:{self.port}/lab\?token=([0-9a-f]+)", self.log())
            if m:
                self.token = m.group(1)
                try:
                    if get(f"{self.base}/api/status", self.token)[0] == 200:
                        self.startup = time.monotonic() - self.t0
                        return
                except OSError:        # not listening yet
                    pass
            time.sleep(0.2)
        pytest.fail(f"lab.sh did not serve on port {self.port} within {START_TIMEOUT} s:\n{self.log()[-3000:]}")

    def stop(self):
        """SIGTERM to lab.sh's process group (lab.sh execs jupyter, the group leader);
        SIGKILL if it is still there after STOP_TIMEOUT. Returns True if SIGTERM sufficed."""
        if self.proc.poll() is not None:
            return True
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
            return True
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return False

    def kill_leftovers(self):
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("scripts/lab.sh runs scripts/setup.sh, which needs root")
    tmp = str(tmp_path_factory.mktemp("lab"))
    lab = Lab(tmp)
    try:
        lab.wait_ready()
        yield lab
    finally:
        lab.stop()
        lab.kill_leftovers()          # only after a failure: test_stop asserts there are none
        shutil.rmtree(lab.root, ignore_errors=True)
        for sub in ("jupyter-config", "jupyter-data", "jupyter-runtime", "ipython"):
            shutil.rmtree(os.path.join(tmp, sub), ignore_errors=True)
        print(f"lab: served after {lab.startup and round(lab.startup, 1)} s; log {lab.log_path}")


def test_serves_chapters_on_loopback_with_token(lab):
    # Listens on 127.0.0.1 and nowhere else: not 0.0.0.0 (00000000), not any IPv6 address.
    assert listeners(lab.port) == [("tcp", "0100007F")], listeners(lab.port)

    # Its random token: 48 hex digits, in the environment, not on the command line.
    assert re.fullmatch(r"[0-9a-f]{48}", lab.token)
    with open(f"/proc/{lab.proc.pid}/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode()
    assert "jupyter" in cmdline
    assert lab.token not in cmdline, "the token is on jupyter's command line, for `ps` to show"

    # No token, or a wrong one: refused.
    assert get(f"{lab.base}/api/contents")[0] in (401, 403)
    assert get(f"{lab.base}/api/contents", "0" * 48)[0] in (401, 403)

    # With it: the lab's root is notebooks/ (--ServerApp.root_dir), and it lists exactly
    # the chapters on disk.
    status, body = get(f"{lab.base}/api/contents", lab.token)
    assert status == 200, body[:500]
    listed = sorted(e["name"] for e in json.loads(body)["content"] if e["type"] == "notebook")
    on_disk = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CHAPTERS, "*.ipynb")))
    assert CHAPTER in on_disk
    assert listed == on_disk

    # And serves a chapter's content as it is in the repo.
    status, body = get(f"{lab.base}/api/contents/{CHAPTER}", lab.token)
    assert status == 200
    with open(os.path.join(CHAPTERS, CHAPTER)) as f:
        assert json.loads(body)["content"]["cells"][0]["source"] == "".join(json.load(f)["cells"][0]["source"])


NEWS = "@jupyterlab/apputils-extension:notification"


def test_news_prompt_is_off(lab):
    """JupyterLab's "Would you like to get notified about official Jupyter news?" toast:
    lab.sh answers "never" in the settings overrides (overrides.json in the venv's
    share/jupyter/lab/settings), which the server applies as the settings' defaults."""
    with open(os.path.join(REPO, ".venv", "share", "jupyter", "lab", "settings", "overrides.json")) as f:
        assert json.load(f)[NEWS] == {"fetchNews": "false", "checkForUpdates": False}
    status, body = get(f"{lab.base}/lab/api/settings/{NEWS}", lab.token)
    assert status == 200, body[:500]
    props = json.loads(body)["schema"]["properties"]
    assert props["fetchNews"]["default"] == "false", props["fetchNews"]
    assert props["checkForUpdates"]["default"] is False, props["checkForUpdates"]


def first_heading(path):
    """The text of the chapter's first markdown heading, from the file itself."""
    with open(path) as f:
        for cell in json.load(f)["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
    raise AssertionError(f"{path}: no markdown heading")


def test_chromium_renders_chapter(lab, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium (scripts/setup.sh installs it)")
    home = tmp_path / "home"           # Chromium writes ~/.config/chromium even with --user-data-dir
    home.mkdir()
    shot = tmp_path / "chapter.png"
    url = f"{lab.base}/lab/tree/{CHAPTER}?token={lab.token}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-proxy-server", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
           "--virtual-time-budget=20000", f"--screenshot={shot}", "--dump-dom", url]
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"))
    t0 = time.monotonic()
    browser = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        dom, err = browser.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail("chromium did not finish within 180 s")
    finally:
        try:                           # its zygote and renderers share its process group
            os.killpg(browser.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    took = time.monotonic() - t0
    dom = dom.decode(errors="replace")
    (tmp_path / "chapter.html").write_text(dom)
    print(f"chromium: {took:.1f} s; screenshot {shot}")
    assert browser.returncode == 0, err.decode(errors="replace")[-2000:]

    # JupyterLab itself loaded (not the login page), with the chapter open in a notebook
    # panel: its tab, its first heading rendered from markdown into an <h1>.
    assert "jp-LabShell" in dom, dom[:1000]
    assert "jp-NotebookPanel" in dom
    assert f">{CHAPTER}<" in dom
    heading = first_heading(os.path.join(CHAPTERS, CHAPTER))
    assert re.search(r"<h1[^>]*>(<[^>]*>)*\s*" + re.escape(heading), dom), heading
    assert "jp-RenderedMarkdown" in dom and "jp-CodeCell" in dom
    assert "Jupyter news" not in dom, "the news prompt pops up (lab.sh's settings overrides?)"

    # The screenshot is a real PNG of the page, not an empty one.
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000, len(data)


def test_stop_leaves_nothing(lab):
    # A kernel runs in its own session (jupyter_client), so killing lab.sh's process group
    # alone would not reach it: make sure there is one, then see the server shut it down.
    status, body = get(f"{lab.base}/api/kernels", lab.token)
    assert status == 200
    if not json.loads(body):
        status, body = get(f"{lab.base}/api/kernels", lab.token, data=b"{}")
        assert status == 201, body[:500]
    before = processes_with(lab.marker)
    assert lab.proc.pid in before
    assert any("ipykernel" in cmd for cmd in before.values()), before

    t0 = time.monotonic()
    clean = lab.stop()
    took = time.monotonic() - t0
    print(f"stop: {took:.1f} s")
    assert clean, f"lab did not stop on SIGTERM within {STOP_TIMEOUT} s:\n{lab.log()[-2000:]}"

    deadline = time.monotonic() + 5    # a kernel's last moments after the server exited
    while processes_with(lab.marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(lab.marker) == {}
    assert listeners(lab.port) == []
    # A clean shutdown removes its server and kernel files (jpserver-*.json, kernel-*.json).
    assert [f for f in os.listdir(lab.runtime_dir) if f.endswith(".json")] == []
