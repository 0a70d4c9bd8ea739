"""Tests loquat.Daemon against the real daemon ($LOQUAT_DAEMON, $LOQUATD, else loquatd on PATH).

Model steps use the sample-model cache ($LOQUAT_MODELS, default ~/.cache/loquat/models) and are
skipped when it is missing; tqdm tests are skipped when tqdm is not installed.
"""

import contextlib
import inspect
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from unittest import mock

import loquat
import loquat.daemon

from .support import (CALL_TIMEOUT, daemon_outlives_killed_parent, running, MINILM, OPENRPC, SMOLLM2, capture_sent, have_minilm, have_smollm2, quiet,
                      requires, start_daemon, text_sample)

LAYER0 = "encoder.layer.0.*"
SENTENCES = "The quick brown fox jumps over the lazy dog. " * 40


def requests_for(sent, method):
    return [message for message in sent if message.get("method") == method]




def fake_daemon(directory, body):
    """An executable Python script standing in for loquatd: answers initialize, then runs ``body``
    (with ``message`` bound) for every other request."""
    path = os.path.join(directory, "fake-loquatd")
    with open(path, "w") as file:
        file.write("#!%s\n" % sys.executable)
        file.write(textwrap.dedent("""\
            import json, os, sys
            for line in sys.stdin:
                message = json.loads(line)
                if "id" not in message:
                    continue
                if message["method"] == "initialize":
                    reply = {"jsonrpc": "2.0", "id": message["id"],
                             "result": {"serverInfo": {"name": "fake"}, "capabilities": {"methods": []}}}
                    sys.stdout.write(json.dumps(reply) + "\\n")
                    sys.stdout.flush()
                    continue
            """))
        file.write(textwrap.indent(textwrap.dedent(body), "    "))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


class FakeBar:
    """Stands in for tqdm.auto.tqdm: records what the progress bar was asked to do."""

    instances = []

    def __init__(self, total=None, desc=None, **options):
        self.total, self.desc, self.options = total, desc, options
        self.n, self.postfixes, self.closed = 0, [], False
        FakeBar.instances.append(self)

    def update(self, amount):
        self.n += amount

    def set_postfix_str(self, text, refresh=True):
        self.postfixes.append(text)

    def refresh(self):
        pass

    def close(self):
        self.closed = True


class LocationTests(unittest.TestCase):
    """Where the daemon comes from: argument, $LOQUAT_DAEMON, $LOQUATD, PATH."""

    @classmethod
    def setUpClass(cls):
        cls.real = loquat.find_daemon()  # the daemon under test, from the environment

    def environment(self, **values):
        clean = {key: value for key, value in os.environ.items() if key not in ("LOQUAT_DAEMON", "LOQUATD")}
        clean.update({key: value for key, value in values.items() if value is not None})
        return mock.patch.dict(os.environ, clean, clear=True)

    def test_missing_binary_is_a_clear_error(self):
        with self.assertRaises(loquat.DaemonNotFound) as caught:
            loquat.Daemon("/nonexistent/loquatd")
        error = caught.exception
        self.assertIsInstance(error, FileNotFoundError)
        self.assertIsInstance(error, loquat.LoquatError)
        self.assertIn("/nonexistent/loquatd", str(error))
        self.assertIn("no such file", str(error))
        self.assertEqual(error.filename, "/nonexistent/loquatd")
        self.assertEqual(error.data["tried"], [("/nonexistent/loquatd", "argument: no such file")])

    def test_not_executable_and_directory_are_named(self):
        with tempfile.NamedTemporaryFile() as file:
            with self.assertRaisesRegex(loquat.DaemonNotFound, "not executable"):
                loquat.Daemon(file.name)
        with self.assertRaisesRegex(FileNotFoundError, "a directory"):
            loquat.Daemon(tempfile.gettempdir())

    def test_nothing_configured_names_every_place_tried(self):
        with self.environment(PATH=tempfile.gettempdir()), self.assertRaises(loquat.DaemonNotFound) as caught:
            loquat.Daemon()
        message = str(caught.exception)
        for part in ("loquatd (PATH: not on PATH)", "$LOQUAT_DAEMON (not set)", "$LOQUATD (not set)", "swift build"):
            self.assertIn(part, message)

    def test_loquat_daemon_comes_first_and_loquatd_still_works(self):
        with self.environment(LOQUAT_DAEMON=self.real, LOQUATD="/nonexistent/loquatd"):
            self.assertEqual(loquat.find_daemon(), self.real)
        with self.environment(LOQUATD=self.real):
            self.assertEqual(loquat.find_daemon(), self.real)
            with loquat.Daemon(stderr=quiet()) as daemon:
                self.assertEqual(daemon.server_info["serverInfo"]["name"], "loquatd")

    def test_a_set_but_wrong_variable_is_not_skipped(self):
        with self.environment(LOQUAT_DAEMON="/nonexistent/loquatd", LOQUATD=self.real):
            with self.assertRaisesRegex(loquat.DaemonNotFound, r"\$LOQUAT_DAEMON: no such file"):
                loquat.Daemon()

    def test_a_name_is_looked_up_on_path(self):
        directory = os.path.dirname(self.real)
        with self.environment(PATH=directory + os.pathsep + os.environ.get("PATH", ""),
                              LOQUAT_DAEMON=os.path.basename(self.real)):
            self.assertEqual(os.path.realpath(loquat.find_daemon()), os.path.realpath(self.real))


class LifecycleTests(unittest.TestCase):
    def test_context_manager_shuts_down_and_later_calls_raise(self):
        with start_daemon() as daemon:
            self.assertIn("initAdapter", daemon.initialize()["capabilities"]["methods"])
            self.assertIn("running", repr(daemon))
        self.assertEqual(daemon.returncode, 0)
        with self.assertRaises(loquat.DaemonExited):
            daemon.list_models()

    def test_daemon_dies_with_its_python_process(self):
        self.assertFalse(daemon_outlives_killed_parent("loquat.Daemon(stderr=open(os.devnull, 'w'))"), "loquatd outlived its Python process")

    def test_progress_argument_is_checked(self):
        with self.assertRaises(TypeError):
            loquat.Daemon(progress="yes")


class CrashTests(unittest.TestCase):
    """A daemon that goes away mid-request: the call raises DaemonExited at once, never hangs."""

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory(prefix="loquat-fake-")
        self.addCleanup(self.directory.cleanup)

    def test_daemon_exiting_mid_request_raises(self):
        path = fake_daemon(self.directory.name, """\
            sys.stderr.write("fake loquatd: crashing in %s\\n" % message["method"])
            os._exit(70)
            """)
        daemon = start_daemon(path=path)
        self.addCleanup(daemon.close)
        started = time.monotonic()
        with self.assertRaises(loquat.DaemonExited) as caught:
            daemon.load("/some/model")
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(caught.exception.returncode, 70)
        self.assertIn("exit status 70", str(caught.exception))
        self.assertIn("model/load", str(caught.exception))
        with self.assertRaises(loquat.DaemonExited):
            daemon.list_models()
        self.assertEqual(daemon.close(), 70)

    def test_daemon_writing_garbage_mid_request_raises(self):
        path = fake_daemon(self.directory.name, """\
            sys.stdout.write("this is not JSON\\n")
            sys.stdout.flush()
            """)
        daemon = start_daemon(path=path, stop_timeout=5)
        self.addCleanup(daemon.close)
        with self.assertRaisesRegex(loquat.DaemonExited, "unreadable"):
            daemon.list_models()

    @have_smollm2
    def test_real_daemon_killed_during_a_long_call_raises(self):
        daemon = start_daemon()
        self.addCleanup(daemon.close)
        daemon.load(SMOLLM2, name="base")
        killer = threading.Timer(0.5, os.kill, (daemon.pid, signal.SIGKILL))
        killer.start()
        self.addCleanup(killer.cancel)
        with self.assertRaises(loquat.DaemonExited) as caught:  # no progress: nothing else wakes us
            daemon.evaluate("base", text=text_sample(), context_length=256)  # ~13 windows: seconds of work
        self.assertEqual(caught.exception.returncode, -signal.SIGKILL)
        self.assertEqual(daemon.close(), -signal.SIGKILL)


@have_minilm
class WrapperTests(unittest.TestCase):
    """Every typed method, on MiniLM (BERT) layer 0, and the camelCase params they send."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = start_daemon()
        cls.sent = capture_sent(cls.daemon)
        cls.model = cls.daemon.load(MINILM, name="bert")
        cls.calibration = cls.daemon.calibrate(cls.model, text=SENTENCES, context_length=64, sample_count=2,
                                               targets=[LAYER0], name="calib")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()

    def setUp(self):
        self.scratch = tempfile.TemporaryDirectory(prefix="loquat-py-daemon-")
        self.addCleanup(self.scratch.cleanup)
        self.handles = []
        self.addCleanup(self.unload_all)

    def unload_all(self):
        for adapter in self.daemon.list_adapters():
            self.daemon.unload_adapter(adapter["adapter"])
        for _ in range(3):  # dependents first
            for model in reversed(self.daemon.list_models()):
                if model["model"] != "bert":
                    with contextlib.suppress(loquat.LoquatError):
                        self.daemon.unload(model["model"])

    def last(self, method):
        return requests_for(self.sent, method)[-1]["params"]

    def test_initialize_once(self):
        info = self.daemon.initialize()
        self.assertIs(self.daemon.initialize(trace="off"), info)
        self.assertEqual(requests_for(self.sent, "initialize"), [])  # sent by the constructor only
        with start_daemon(initialize=False) as daemon:
            sent = capture_sent(daemon)
            result = daemon.initialize(trace="off", client_info={"name": "test", "version": "1"})
            self.assertEqual(result["serverInfo"]["name"], "loquatd")
            self.assertEqual(sent[0]["params"], {"processId": os.getpid(), "clientInfo": {"name": "test", "version": "1"},
                                                 "trace": "off"})

    def test_load_info_list_save_unload(self):
        self.assertEqual(self.model["model"], "bert")
        self.assertEqual(self.model["architecture"], "bert")
        info = self.daemon.info(self.model)
        self.assertEqual(len(info["tensors"]), self.model["tensorCount"])
        self.assertEqual(info["config"]["model_type"], "bert")
        self.assertIn("bert", [model["model"] for model in self.daemon.list_models()])
        target = os.path.join(self.scratch.name, "bert-f16")
        saved = self.daemon.save(self.model, target, dtype="F16", format="safetensors")
        self.assertEqual(saved["tensorCount"], self.model["tensorCount"])
        self.assertEqual(self.last("model/save"), {"model": "bert", "path": target, "dtype": "F16", "format": "safetensors"})
        with self.assertRaises(loquat.LoquatError) as caught:  # exists, no overwrite
            self.daemon.save("bert", target)
        self.assertEqual(caught.exception.code, -32004)
        self.daemon.save("bert", target, dtype="F16", overwrite=True)
        half = self.daemon.load(target, name="half")
        self.assertEqual(self.daemon.unload(half), {"model": "half", "unloaded": True})

    def test_quantize_maps_snake_case(self):
        quantized = self.daemon.quantize(self.model, "int", bits=4, group_size=32, symmetric=False, clip_search=True,
                                         targets=(LAYER0,), exclude="*.intermediate.*", calibration=self.calibration,
                                         rotate={"kind": "hadamard", "seed": 3}, name="q-int4")
        self.assertEqual(self.last("quantize"), {
            "model": "bert", "method": "int", "bits": 4, "groupSize": 32, "symmetric": False, "clipSearch": True,
            "targets": [LAYER0], "exclude": "*.intermediate.*", "calibration": "calib",
            "rotate": {"kind": "hadamard", "seed": 3}, "name": "q-int4"})
        self.assertEqual(quantized["model"], "q-int4")
        self.assertEqual(len(quantized["layers"]), 5)
        self.assertTrue(all("outputRelativeError" in layer for layer in quantized["layers"]))
        nf4 = self.daemon.quantize("bert", "nf4", double_quant=True, targets=LAYER0, name="q-nf4")
        self.assertTrue(self.last("quantize")["doubleQuant"])
        self.assertTrue(all(layer["doubleQuant"] for layer in nf4["layers"]))
        fp8 = self.daemon.quantize("bert", "fp8", fp8_format="e5m2", targets=LAYER0, name="q-fp8")
        self.assertEqual(self.last("quantize")["fp8Format"], "e5m2")
        self.assertEqual(fp8["layers"][0]["bits"], 8)

    def test_quantize_plan(self):
        plan = self.daemon.quantize_plan(self.model, 4.5, [{"method": "int", "bits": 4}, {"method": "int", "bits": 8}],
                                         targets=[LAYER0])
        self.assertEqual(self.last("quantize/plan")["budgetBitsPerWeight"], 4.5)
        self.assertLessEqual(plan["bitsPerWeight"], 4.5 + 1e-9)
        planned = self.daemon.quantize("bert", plan=plan["plan"], name="q-plan")
        self.assertNotIn("method", self.last("quantize"))
        self.assertEqual(len(planned["layers"]), len(plan["plan"]))

    def test_errors_carry_code_message_data(self):
        with self.assertRaises(loquat.LoquatError) as caught:
            self.daemon.quantize("bert", "int", bits=9)
        error = caught.exception
        self.assertEqual((error.code, error.data["param"]), (-32602, "bits"))
        self.assertIn("bits", error.message)
        with self.assertRaises(loquat.LoquatError) as caught:
            self.daemon.info("no-such-model")
        self.assertEqual((caught.exception.code, caught.exception.data["handle"]), (-32001, "no-such-model"))
        with self.assertRaises(loquat.LoquatError) as caught:  # extra keywords go through, camelCased
            self.daemon.quantize("bert", "nf4", not_a_param=1)
        self.assertEqual((caught.exception.code, caught.exception.data["param"]), (-32602, "notAParam"))

    def test_calibrate_and_evaluate_layer_errors(self):
        self.assertEqual(self.calibration["calibration"], "calib")
        self.assertEqual(self.last("calibrate")["contextLength"], 64)
        self.assertEqual(self.last("calibrate")["sampleCount"], 2)
        quantized = self.daemon.quantize("bert", "int", bits=3, targets=LAYER0, name="q3")
        result = self.daemon.evaluate(quantized, ["weightError", "outputError"], calibration=self.calibration)
        self.assertEqual(self.last("evaluate")["calibration"], "calib")
        self.assertEqual(len(result["layers"]), 6)
        self.assertGreater(result["weightError"]["mean"], 0)
        cosine = self.daemon.evaluate(quantized, "embeddingCosine", reference="bert",
                                      text="A first sentence.\nAnd a second one.")
        self.assertEqual(cosine["embeddingCosine"]["sentenceCount"], 2)
        self.assertGreater(cosine["embeddingCosine"]["mean"], 0.5)

    def test_adapter_round_trip(self):
        quantized = self.daemon.quantize("bert", "nf4", targets=LAYER0, name="a-nf4")
        made = self.daemon.init_adapter(quantized, "cloq", 4, calibration=self.calibration, use_dora=True,
                                        use_rslora=True, rank_pattern={"value": 2}, alpha_pattern={"value": 4},
                                        seed=1, damping=0.02, svd="exact", name="a-cloq")
        sent = self.last("initAdapter")
        self.assertEqual({key: sent[key] for key in ("useDoRA", "useRSLoRA", "rankPattern", "alphaPattern", "damping")},
                         {"useDoRA": True, "useRSLoRA": True, "rankPattern": {"value": 2}, "alphaPattern": {"value": 4},
                          "damping": 0.02})
        self.assertEqual(made["adapter"], "a-cloq")
        self.assertTrue(made["useDoRA"] and made["useRSLoRA"])
        for layer in made["layers"]:
            self.assertLess(layer["outputErrorAfter"], layer["outputErrorBefore"])
        directory = os.path.join(self.scratch.name, "peft")
        saved = self.daemon.save_adapter(made, directory, base_model_name_or_path="sentence-transformers/all-MiniLM-L6-v2")
        self.assertEqual(self.last("adapter/save")["baseModelNameOrPath"], "sentence-transformers/all-MiniLM-L6-v2")
        self.assertEqual(saved["maxAbsDeltaDifference"], 0)
        with open(os.path.join(directory, "adapter_config.json")) as file:
            self.assertEqual(json.load(file)["base_model_name_or_path"], "sentence-transformers/all-MiniLM-L6-v2")
        loaded = self.daemon.load_adapter(directory, model=quantized, name="a-copy")
        self.assertEqual(self.last("adapter/load"), {"path": directory, "model": "a-nf4", "name": "a-copy"})
        self.assertTrue(loaded["useDoRA"])
        self.assertEqual(sorted(a["adapter"] for a in self.daemon.list_adapters()), ["a-cloq", "a-copy"])
        self.assertEqual(self.daemon.unload_adapter(loaded), {"adapter": "a-copy", "unloaded": True})
        with self.assertRaises(loquat.LoquatError) as caught:
            self.daemon.init_adapter(quantized, "cloq", 4)
        self.assertEqual(caught.exception.data["param"], "calibration")

    def test_loftq_merge_unmerge_extract(self):
        quantized = self.daemon.quantize("bert", "int", bits=4, targets=LAYER0, name="m-int4")
        made = self.daemon.init_adapter(quantized, "loftq", 4, iterations=1, name="m-loftq", model_name="m-base")
        self.assertEqual(self.last("initAdapter")["modelName"], "m-base")
        self.assertEqual(made["model"], "m-base")
        merged = self.daemon.merge(["m-loftq"], model=made, into="full", name="m-full")
        self.assertEqual(self.last("merge")["adapters"], [{"adapter": "m-loftq"}])
        self.assertEqual(merged["model"], "m-full")
        back = self.daemon.unmerge(merged, name="m-back")
        self.assertEqual(self.last("model/unmerge"), {"model": "m-full", "name": "m-back"})
        self.assertEqual(back["source"], "m-full")
        extracted = self.daemon.extract_adapter(back, merged, energy=0.999, max_rank=4, targets=LAYER0, name="m-x")
        self.assertEqual(self.last("extractAdapter")["maxRank"], 4)
        self.assertTrue(all(layer["rank"] <= 4 for layer in extracted["layers"]))
        combined = self.daemon.merge([("m-loftq", 1.0), {"adapter": made, "weight": -1.0}], combination="linear",
                                     name="m-zero")
        self.assertEqual(self.last("merge")["adapters"], [{"adapter": "m-loftq", "weight": 1.0},
                                                          {"adapter": "m-loftq", "weight": -1.0}])
        self.assertEqual(combined["adapter"], "m-zero")
        with self.assertRaises(loquat.LoquatError) as caught:
            self.daemon.merge(["m-loftq"], combination="ties", density=2, majority_sign="total")
        self.assertEqual(caught.exception.data["param"], "density")
        self.assertEqual(self.last("merge")["majoritySign"], "total")

    def test_every_protocol_param_has_a_keyword(self):
        if not os.path.isfile(OPENRPC):
            self.skipTest("protocol/openrpc.json not found at %s" % OPENRPC)
        with open(OPENRPC) as file:
            methods = {method["name"]: method for method in json.load(file)["methods"]}
        wrappers = {"initialize": "initialize", "model/load": "load", "model/info": "info", "model/list": "list_models",
                    "model/unload": "unload", "model/save": "save", "model/unmerge": "unmerge",
                    "quantize": "quantize", "quantize/plan": "quantize_plan", "calibrate": "calibrate",
                    "initAdapter": "init_adapter", "adapter/save": "save_adapter", "adapter/load": "load_adapter",
                    "adapter/list": "list_adapters", "adapter/unload": "unload_adapter", "merge": "merge",
                    "extractAdapter": "extract_adapter", "evaluate": "evaluate"}
        lifecycle = {"initialized", "shutdown", "exit", "$/cancelRequest"}  # close() and cancel() send these
        self.assertEqual(set(methods) - lifecycle, set(wrappers), "a method without a typed wrapper (or a stale one)")
        for rpc, name in wrappers.items():
            function = getattr(loquat.Daemon, name)
            keywords = set(inspect.signature(function).parameters)
            self.assertTrue(function.__doc__, name)
            for param in methods[rpc].get("params", []):
                if param["name"] == "workDoneToken":
                    continue
                snake = {"useRSLoRA": "use_rslora", "useDoRA": "use_dora"}.get(param["name"]) or "".join(
                    "_" + char.lower() if char.isupper() else char for char in param["name"])
                self.assertIn(snake, keywords, "%s has no keyword for %s's param %s" % (name, rpc, param["name"]))
                if snake not in ("path", "model", "adapter", "base", "finetuned", "adapters"):
                    self.assertIn(param["name"] if snake == param["name"] else snake, function.__doc__,
                                  "%s's docstring does not name %s" % (name, snake))


@have_minilm
class ProgressTests(unittest.TestCase):
    def setUp(self):
        self.daemon = start_daemon()
        self.addCleanup(self.daemon.close)
        self.sent = capture_sent(self.daemon)
        self.daemon.load(MINILM, name="bert")
        FakeBar.instances = []

    def test_callable_gets_begin_report_end(self):
        values = []
        self.daemon.quantize("bert", "nf4", targets=LAYER0, progress=values.append)
        kinds = [value["kind"] for value in values]
        self.assertEqual((kinds[0], kinds[-1]), ("begin", "end"))
        self.assertIn("report", kinds)
        self.assertIn("workDoneToken", self.sent[-1]["params"])

    def test_progress_false_sends_no_token(self):
        self.daemon.quantize("bert", "nf4", targets=LAYER0, progress=False)
        self.assertNotIn("workDoneToken", self.sent[-1]["params"])

    def test_true_draws_a_tqdm_bar_from_begin_to_close(self):
        with mock.patch.object(loquat.daemon, "_tqdm_class", return_value=FakeBar):
            self.daemon.quantize("bert", "nf4", targets=LAYER0, progress=True)
        [bar] = FakeBar.instances
        self.assertEqual((bar.total, bar.n, bar.closed), (100, 100, True))
        self.assertTrue(bar.desc.startswith("Quantizing"))
        self.assertTrue(any(text.startswith("encoder.layer.0.") for text in bar.postfixes))

    def test_constructor_default_applies_and_a_call_overrides_it(self):
        self.daemon.progress = True
        with mock.patch.object(loquat.daemon, "_tqdm_class", return_value=FakeBar):
            self.daemon.quantize("bert", "nf4", targets=LAYER0, name="one")
            self.daemon.quantize("bert", "nf4", targets=LAYER0, name="two", progress=False)
        self.assertEqual(len(FakeBar.instances), 1)

    def test_without_tqdm_progress_is_silently_off(self):
        with mock.patch.object(loquat.daemon, "_tqdm_class", return_value=None):
            self.daemon.quantize("bert", "nf4", targets=LAYER0, progress=True)
        self.assertNotIn("workDoneToken", self.sent[-1]["params"])

    def test_tqdm_missing_is_detected(self):
        with mock.patch.dict(sys.modules, {"tqdm": None, "tqdm.auto": None}):
            self.assertIsNone(loquat.daemon._tqdm_class())

    @requires("tqdm")
    def test_real_tqdm_bar_in_a_terminal(self):
        stream = io.StringIO()
        with contextlib.redirect_stderr(stream):
            self.daemon.quantize("bert", "nf4", targets=LAYER0, progress=True)
        self.assertIn("Quantizing bert:", stream.getvalue())  # tqdm throttles redraws; leave=False erases it

    def test_bar_closes_when_the_call_fails(self):
        with mock.patch.object(loquat.daemon, "_tqdm_class", return_value=FakeBar):
            with self.assertRaises(loquat.LoquatError):
                self.daemon.quantize("bert", "int", bits=9, progress=True)
        self.assertTrue(all(bar.closed for bar in FakeBar.instances))


class CancellationTests(unittest.TestCase):
    """Ctrl-C (KeyboardInterrupt) during a call sends $/cancelRequest and re-raises; the daemon
    stops the work and keeps serving."""

    def setUp(self):
        self.daemon = start_daemon()
        self.addCleanup(self.daemon.close)
        self.sent = capture_sent(self.daemon)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal or Jupyter
        self.addCleanup(signal.signal, signal.SIGINT, previous)

    def assert_cancelled(self, method):
        [request] = requests_for(self.sent, method)[-1:]
        cancels = [message["params"]["id"] for message in requests_for(self.sent, "$/cancelRequest")]
        self.assertEqual(cancels, [request["id"]])
        self.assertNotIn("id", requests_for(self.sent, "$/cancelRequest")[0])  # a notification

    @have_minilm
    def test_interrupt_during_progress_cancels_the_quantize(self):
        self.daemon.load(MINILM, name="bert")

        def interrupt(value):
            if value["kind"] == "report":
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

        with self.assertRaises(KeyboardInterrupt):
            self.daemon.quantize("bert", "int", bits=3, clip_search=True, name="never", progress=interrupt)
        self.assert_cancelled("quantize")
        handles = [model["model"] for model in self.daemon.list_models()]  # queued behind the cancelled work
        self.assertEqual(handles, ["bert"])  # a cancelled quantize registers nothing
        again = self.daemon.quantize("bert", "nf4", targets=LAYER0, name="after")
        self.assertEqual(again["model"], "after")

    @have_smollm2
    def test_interrupt_while_waiting_cancels_the_evaluate(self):
        self.daemon.load(SMOLLM2, name="base")
        interrupter = threading.Timer(0.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
        interrupter.start()
        self.addCleanup(interrupter.cancel)
        started = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):  # blocked waiting for the response, as in Jupyter
            self.daemon.evaluate("base", text=text_sample(), context_length=256, progress=False)  # ~13 windows
        self.assertLess(time.monotonic() - started, 30)
        self.assert_cancelled("evaluate")
        self.assertEqual([model["model"] for model in self.daemon.list_models()], ["base"])
        result = self.daemon.evaluate("base", text=text_sample(), context_length=64, max_chunks=1)
        self.assertGreater(result["perplexity"]["value"], 1)


@have_smollm2
class SmolLM2Tests(unittest.TestCase):
    def test_perplexity_with_and_without_an_adapter(self):
        with start_daemon() as daemon:
            daemon.load(SMOLLM2, name="base")
            text = text_sample()[:4000]
            targets = "model.layers.0.self_attn.{q,v}_proj.weight"
            quantized = daemon.quantize("base", "nf", bits=2, targets=targets, name="nf2")
            made = daemon.init_adapter(quantized, "lora", 4, seed=7, name="zero-b")
            plain = daemon.evaluate(quantized, text=text, context_length=64, max_chunks=1)
            adapted = daemon.evaluate(quantized, ["perplexity", "kld"], adapter=made, reference="base", text=text,
                                      context_length=64, max_chunks=1, scoring="all")
            self.assertEqual(adapted["adapter"], "zero-b")
            # PEFT's lora init has B = 0: the adapter changes nothing, bit for bit.
            self.assertEqual(adapted["perplexity"]["value"], plain["perplexity"]["value"])
            self.assertGreaterEqual(adapted["kld"]["mean"], 0)


if __name__ == "__main__":
    unittest.main()
