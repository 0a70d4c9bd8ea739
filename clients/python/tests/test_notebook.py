"""Executes examples/sweep.ipynb headless (jupyter nbconvert --to notebook --execute) against the
real daemon, into a temporary directory, and checks the figure it saves.

Skipped, with the reason, when jupyter/nbconvert/ipykernel/matplotlib/pandas are not installed,
when the SmolLM2 sample model or the notebook is missing, or when LOQUAT_SKIP_NOTEBOOK=1 (it
takes one to two minutes on two cores).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import loquat

from .support import REPOSITORY, TEXT, have_smollm2, requires

NOTEBOOK = os.path.join(REPOSITORY, "examples", "sweep.ipynb")
TIMEOUT = 900  # seconds, for the whole notebook; one cell is bounded by the same
KERNEL = "loquat-tests"


@unittest.skipIf(os.environ.get("LOQUAT_SKIP_NOTEBOOK") == "1", "LOQUAT_SKIP_NOTEBOOK=1")
@unittest.skipUnless(os.path.isfile(NOTEBOOK), "no notebook at %s" % NOTEBOOK)
@unittest.skipUnless(os.path.isfile(TEXT), "no text at %s" % TEXT)
@have_smollm2
@requires("jupyter_core", "nbconvert", "nbformat", "ipykernel", "matplotlib", "pandas")
class SweepNotebookTests(unittest.TestCase):
    def test_sweep_notebook_runs_and_saves_a_png(self):
        daemon = loquat.find_daemon()  # the same daemon as the other tests; absolute for the kernel
        with tempfile.TemporaryDirectory(prefix="loquat-notebook-") as directory:
            figure = os.path.join(directory, "figures", "sweep.png")
            # A kernel spec of our own for this interpreter, so that a user's "python3" spec
            # pointing at another Python cannot take over.
            kernels = os.path.join(directory, "jupyter", "kernels", KERNEL)
            os.makedirs(kernels)
            with open(os.path.join(kernels, "kernel.json"), "w") as file:
                json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                           "display_name": "loquat tests", "language": "python"}, file)
            environment = dict(os.environ, LOQUAT_DAEMON=os.path.abspath(daemon), LOQUAT_SWEEP_FIGURE=figure,
                               JUPYTER_PATH=os.pathsep.join(filter(None, [os.path.join(directory, "jupyter"),
                                                                          os.environ.get("JUPYTER_PATH")])),
                               PYTHONPATH=os.pathsep.join(filter(None, [
                                   os.path.dirname(os.path.dirname(loquat.__file__)), os.environ.get("PYTHONPATH")])))
            command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                       "--ExecutePreprocessor.timeout=%d" % TIMEOUT, "--ExecutePreprocessor.kernel_name=%s" % KERNEL,
                       "--output-dir", directory, "--output", "sweep-executed.ipynb", NOTEBOOK]
            started = time.monotonic()
            run = subprocess.run(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, timeout=TIMEOUT + 60)
            seconds = time.monotonic() - started
            self.assertEqual(run.returncode, 0, "nbconvert failed:\n%s" % run.stderr[-4000:])
            with open(figure, "rb") as file:
                self.assertEqual(file.read(8), b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % figure)
            with open(os.path.join(directory, "sweep-executed.ipynb"), encoding="utf-8") as file:
                executed = json.load(file)
            outputs = [output for cell in executed["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]]
            self.assertFalse([output for output in outputs if output["output_type"] == "error"])
            printed = "".join("".join(output.get("text", "")) for output in outputs if output.get("name") == "stdout")
            for quantizer in ("NF4", "INT4", "NF3", "INT3", "NF2"):
                self.assertIn(quantizer, printed)
            if os.environ.get("LOQUAT_TEST_VERBOSE") == "1":
                print("\nsweep.ipynb ran in %.0f s:\n%s" % (seconds, printed), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
