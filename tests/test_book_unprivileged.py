"""The chapters opened without root (Binder, a laptop): recorded outputs stay, no cell errors.

Binder gives no root, so no container can start. Each chapter's first cell calls
lab.start(), which then says so and leaves lab.LIVE False; the cell then makes every later
code cell print one line instead of running. This test executes each chapter as user
nobody (setpriv, as Binder's jovyan would: no root, no capabilities), with nbconvert's
--allow-errors off, so any cell that raises fails it; it also checks that the live cells
were skipped with the note rather than run. Needs root to switch user.
"""
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO

CHAPTERS = sorted(glob.glob(os.path.join(REPO, "notebooks", "[0-9][0-9]-*.ipynb")))
JUPYTER = os.path.join(os.path.dirname(sys.executable), "jupyter")
NOTE = "Not run: live cells need root."
NOBODY = 65534


def printed(cell):
    """What a code cell printed (a saved notebook keeps text as a list of lines)."""
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


@pytest.fixture
def scratch():
    """A directory nobody can write: HOME, TMPDIR, Jupyter's and matplotlib's files.
    (Not pytest's tmp_path: /tmp/pytest-of-root is root's alone, 0700.)"""
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="book-nobody-"))
    os.chmod(tmp_path, 0o755)
    for sub in ("home", "tmp", "out"):
        (tmp_path / sub).mkdir()
        os.chown(tmp_path / sub, NOBODY, NOBODY)
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[os.path.basename(c)[:2] for c in CHAPTERS])
def test_chapter_runs_without_root(chapter, scratch):
    if os.geteuid() != 0:
        pytest.skip("switching to user nobody needs root")
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv (util-linux)")
    copy = scratch / "out" / os.path.basename(chapter)
    shutil.copy(chapter, copy)
    os.chown(copy, NOBODY, NOBODY)
    home, tmp = str(scratch / "home"), str(scratch / "tmp")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TMPDIR": tmp,
           "PYTHONPATH": REPO, "JUPYTER_RUNTIME_DIR": os.path.join(tmp, "rt"),
           "JUPYTER_DATA_DIR": os.path.join(tmp, "data"), "JUPYTER_CONFIG_DIR": os.path.join(tmp, "cfg"),
           "IPYTHONDIR": os.path.join(tmp, "ipython"), "MPLCONFIGDIR": os.path.join(tmp, "mpl")}
    proc = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           JUPYTER, "nbconvert", "--to", "notebook", "--execute", "--inplace",
                           "--ExecutePreprocessor.timeout=120", str(copy)],
                          env=env, cwd=str(scratch / "out"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    with open(copy) as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    first = printed(cells[0])
    assert "needs root" in first, first              # lab.start() explained why
    for cell in cells[1:]:                           # and no live cell ran
        assert NOTE in printed(cell), ("".join(cell["source"])[:200], cell["outputs"])
