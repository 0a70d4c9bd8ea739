"""Imports PyPI's torch on a machine without CUDA, for the benchmark peers that need it
(nf4_bitsandbytes.py, peft_loftq.py).

PyPI's Linux torch wheel links CUDA libraries that come only as large nvidia-* wheels. When torch
cannot be imported for that reason, `import_torch` builds do-nothing stand-ins with
Tests/Generators/bnb_cuda_stubs.py in $TMPDIR/loquat-cuda-stubs-torch-<version> (once per torch
version, shared by every script) and re-executes the calling script with LD_LIBRARY_PATH pointing
there (nothing on the CPU path calls them). The re-executed process finds LOQUAT_BNB_CUDA_STUBS set
and raises the import error instead of looping.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
STUBS = os.path.join(HERE, "..", "..", "Tests", "Generators", "bnb_cuda_stubs.py")
MARKER = "LOQUAT_BNB_CUDA_STUBS"


def import_torch(caller):
    """torch; None when it is not installed; or re-exec with CUDA stand-ins when only its CUDA
    libraries are missing. `caller` names the script in the message on stderr."""
    try:
        import torch
        return torch
    except ModuleNotFoundError:
        return None
    except (OSError, ValueError, ImportError) as error:
        if os.environ.get(MARKER):
            raise
        from importlib.metadata import version
        stubs = os.path.join(tempfile.gettempdir(), f"loquat-cuda-stubs-torch-{version('torch')}")
        if not os.path.isdir(stubs):
            subprocess.run([sys.executable, STUBS, stubs], check=True, stdout=subprocess.DEVNULL)
        environment = dict(os.environ, **{MARKER: stubs})
        environment["LD_LIBRARY_PATH"] = stubs + os.pathsep + environment.get("LD_LIBRARY_PATH", "")
        print(f"{caller}: torch needs CUDA libraries ({error}); using stand-ins in {stubs}", file=sys.stderr)
        os.execve(sys.executable, [sys.executable] + sys.argv, environment)
