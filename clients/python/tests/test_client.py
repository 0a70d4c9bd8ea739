"""Tests loquat.Client against the real daemon ($LOQUATD, else loquatd on PATH).

Model steps use the sample-model cache ($LOQUAT_MODELS, default ~/.cache/loquat/models) and
are skipped when it is missing. Set LOQUAT_TEST_VERBOSE=1 to see the daemon's log.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import loquat

from .support import CALL_TIMEOUT, MINILM, SMOLLM2, daemon_outlives_killed_parent, have_minilm, have_smollm2, running


def start(**kwargs):
    quiet = os.environ.get("LOQUAT_TEST_VERBOSE") != "1"
    return loquat.Client(stderr=subprocess.DEVNULL if quiet else None, **kwargs)


def safetensors_tensor_count(path):
    """Tensors listed in a safetensors header (8-byte little-endian length, then JSON)."""
    with open(path, "rb") as file:
        header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
    return len([name for name in header if name != "__metadata__"])


def gguf_tensor_count(path):
    """GGUF header: magic, u32 version, u64 tensor count."""
    with open(path, "rb") as file:
        magic, _, count = struct.unpack("<4sIQ", file.read(16))
    assert magic == b"GGUF", magic
    return count




class ClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = start()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_initialize_result(self):
        info = self.client.server_info
        self.assertEqual(info["serverInfo"]["name"], "loquatd")
        self.assertIn("model/load", info["capabilities"]["methods"])
        self.assertIs(self.client.initialize(), info)  # once only; later calls return it

    def test_call_returns_result(self):
        self.assertIsInstance(self.client.call("model/list", timeout=CALL_TIMEOUT)["models"], list)
        self.assertIsInstance(self.client.list_models(), list)

    def test_method_not_found(self):
        with self.assertRaises(loquat.LoquatError) as caught:
            self.client.call("no/such/method", timeout=CALL_TIMEOUT)
        self.assertEqual(caught.exception.code, -32601)
        self.assertIn("no/such/method", str(caught.exception))

    def test_invalid_params_name_the_param(self):
        with self.assertRaises(loquat.LoquatError) as caught:
            self.client.call("model/load", timeout=CALL_TIMEOUT)
        self.assertEqual(caught.exception.code, -32602)
        self.assertEqual(caught.exception.data["param"], "path")
        with self.assertRaises(loquat.LoquatError) as caught:
            self.client.call("model/info", model="x", modle="typo", timeout=CALL_TIMEOUT)
        self.assertEqual((caught.exception.code, caught.exception.data["param"]), (-32602, "modle"))

    @have_minilm
    def test_quantize_and_plan_wrappers(self):
        self.client.load(MINILM, name="q-source")
        try:
            reports = []
            result = self.client.quantize("q-source", "nf4", targets=["encoder.layer.0.*"], name="q-nf4",
                                          on_progress=reports.append)
            self.assertEqual(result["model"], "q-nf4")
            self.assertEqual(len(result["layers"]), 6)
            self.assertTrue(all(0 < layer["relativeError"] < 0.2 for layer in result["layers"]))
            self.assertTrue(any(value.get("kind") == "report" for value in reports))
            plan = self.client.quantize_plan("q-source", 4.5, [{"method": "int", "bits": 4}, {"method": "int", "bits": 8}],
                                             targets=["encoder.layer.0.*"])
            self.assertLessEqual(plan["bitsPerWeight"], 4.5 + 1e-9)
            with self.assertRaises(loquat.LoquatError) as caught:
                self.client.quantize("q-source", "int", bits=9)
            self.assertEqual((caught.exception.code, caught.exception.data["param"]), (-32602, "bits"))
        finally:
            for handle in ("q-nf4", "q-source"):
                try:
                    self.client.unload(handle)
                except loquat.LoquatError:
                    pass

    @have_smollm2
    def test_evaluate_wrapper(self):
        self.client.load(SMOLLM2, name="e-base")
        try:
            text = "It is a truth universally acknowledged, that a single man in possession of a good fortune. " * 4
            result = self.client.evaluate("e-base", ["perplexity", "kld"], reference="e-base", text=text,
                                          context_length=32, max_chunks=1)
            self.assertGreater(result["perplexity"]["value"], 1)
            self.assertEqual(result["kld"]["mean"], 0)
        finally:
            self.client.unload("e-base")

    def test_unknown_handle_is_not_found(self):
        with self.assertRaises(loquat.LoquatError) as caught:
            self.client.info("no-such-model")
        self.assertEqual(caught.exception.code, -32001)

    def test_concurrent_calls_from_threads(self):
        results, errors = [], []

        def work(index):
            try:
                for _ in range(10):
                    results.append(self.client.call("model/list", timeout=CALL_TIMEOUT))
                    with self.assertRaises(loquat.LoquatError):
                        self.client.info("missing-%d" % index)
            except Exception as error:  # reported below, on the test's thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CALL_TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 40)


@have_minilm
class MiniLMTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tensor_count = safetensors_tensor_count(os.path.join(MINILM, "model.safetensors"))

    def setUp(self):
        self.client = start()
        self.addCleanup(self.client.close)
        self.scratch = tempfile.TemporaryDirectory(prefix="loquat-py-test-")
        self.addCleanup(self.scratch.cleanup)

    def test_load_info_list_unload(self):
        loaded = self.client.load(MINILM, name="mini")
        self.assertEqual(loaded["model"], "mini")
        self.assertEqual(loaded["tensorCount"], self.tensor_count)
        self.assertEqual(loaded["format"], "safetensors")
        info = self.client.info(loaded)
        self.assertEqual(len(info["tensors"]), self.tensor_count)
        tensor = info["tensors"][0]
        self.assertEqual(set(tensor) >= {"name", "shape", "dtype", "byteCount"}, True, tensor)
        self.assertIn("mini", [model["model"] for model in self.client.list_models()])
        self.client.unload("mini")
        self.assertEqual(self.client.list_models(), [])

    def test_adapter_wrappers(self):
        """calibrate → quantize → init_adapter (cloq, DoRA) → save_adapter → load_adapter → unload."""
        model = self.client.load(MINILM, name="bert")
        calibration = self.client.calibrate(model, text="The quick brown fox jumps over the lazy dog. " * 20,
                                            context_length=64, sample_count=2, targets="encoder.layer.0.*")
        quantized = self.client.quantize(model, "nf4", targets="encoder.layer.0.*", name="bert-nf4")
        made = self.client.init_adapter(quantized, "cloq", 4, calibration=calibration["calibration"], use_dora=True,
                                        rank_pattern={"value": 2}, name="bert-cloq")
        self.assertEqual(made["adapter"], "bert-cloq")
        ranks = {layer["name"]: layer["rank"] for layer in made["layers"]}
        self.assertEqual(ranks["encoder.layer.0.attention.self.value.weight"], 2)
        for layer in made["layers"]:
            self.assertLess(layer["outputErrorAfter"], layer["outputErrorBefore"])
        with tempfile.TemporaryDirectory() as directory:
            saved = self.client.save_adapter(made, os.path.join(directory, "peft"))
            self.assertEqual(saved["maxAbsDeltaDifference"], 0)
            loaded = self.client.load_adapter(os.path.join(directory, "peft"), model=quantized, name="copy")
            self.assertTrue(loaded["useDoRA"])
        self.assertEqual(sorted(a["adapter"] for a in self.client.list_adapters()), ["bert-cloq", "copy"])
        self.client.unload_adapter("copy")
        with self.assertRaises(loquat.LoquatError) as raised:
            self.client.init_adapter(quantized, "cloq", 4)
        self.assertEqual(raised.exception.data["param"], "calibration")

    def test_merge_unmerge_extract_wrappers(self):
        model = self.client.load(MINILM, name="bert")
        quantized = self.client.quantize(model, "int", bits=4, targets="encoder.layer.0.*", name="q")
        made = self.client.init_adapter(quantized, "loftq", 4, iterations=1, name="a", model_name="qa")
        merged = self.client.merge(["a"], model=made["model"], into="full", name="qa-full")
        self.assertEqual(merged["model"], "qa-full")
        back = self.client.unmerge("qa-full", name="qa-back")
        self.assertEqual(back["source"], "qa-full")
        extracted = self.client.extract_adapter("qa-back", "qa-full", energy=0.999, targets="encoder.layer.0.*", name="x")
        self.assertTrue(all(layer["rank"] <= 4 for layer in extracted["layers"]))
        combined = self.client.merge([("a", 1.0), ("a", -1.0)], combination="linear", name="zero")
        self.assertEqual(combined["adapter"], "zero")
        with self.assertRaises(loquat.LoquatError) as raised:
            self.client.merge(["a"], combination="ties", density=2)
        self.assertEqual(raised.exception.data["param"], "density")

    def test_progress_callback_gets_begin_report_end(self):
        self.client.load(MINILM, name="mini")
        values = []
        target = os.path.join(self.scratch.name, "saved")
        result = self.client.save("mini", target, dtype="F16", on_progress=values.append)
        self.assertEqual(result["tensorCount"], self.tensor_count)
        kinds = [value["kind"] for value in values]
        self.assertEqual(kinds[0], "begin")
        self.assertEqual(kinds[-1], "end")
        self.assertIn("report", kinds)
        self.assertTrue(all(0 <= value.get("percentage", 0) <= 100 for value in values))
        self.assertTrue(os.path.isfile(os.path.join(target, "model.safetensors")))

    def test_client_wide_progress_callback(self):
        values = []
        self.client.on_progress = values.append
        self.client.load(MINILM, name="mini")
        self.client.save("mini", os.path.join(self.scratch.name, "one.safetensors"))
        self.assertEqual([values[0]["kind"], values[-1]["kind"]], ["begin", "end"])
        self.client.on_progress = None
        count = len(values)
        self.client.save("mini", os.path.join(self.scratch.name, "two.safetensors"))
        self.assertEqual(len(values), count)  # no token, no progress

    def test_failing_callback_propagates_and_client_stays_usable(self):
        self.client.load(MINILM, name="mini")

        def fail(value):
            raise RuntimeError("stop at %s" % value["kind"])

        with self.assertRaisesRegex(RuntimeError, "stop at begin"):
            self.client.save("mini", os.path.join(self.scratch.name, "x.safetensors"), on_progress=fail)
        self.assertIn("mini", [model["model"] for model in self.client.list_models()])

    def test_daemon_killed_mid_call_raises(self):
        self.client.load(MINILM, name="mini")

        def kill_on_begin(value):
            if value["kind"] == "begin":
                os.kill(self.client.pid, signal.SIGKILL)

        with self.assertRaises(loquat.DaemonExited) as caught:
            self.client.save("mini", os.path.join(self.scratch.name, "k"), on_progress=kill_on_begin,
                             timeout=CALL_TIMEOUT)
        self.assertEqual(caught.exception.returncode, -signal.SIGKILL)
        self.assertIsInstance(caught.exception, loquat.LoquatError)
        with self.assertRaises(loquat.DaemonExited):  # and every later call, at once
            self.client.list_models()


@have_smollm2
class SmolLM2Tests(unittest.TestCase):
    def test_load_and_info(self):
        with start() as client:
            loaded = client.load(SMOLLM2, name="smol")
            count = gguf_tensor_count(SMOLLM2)
            self.assertEqual((loaded["format"], loaded["tensorCount"]), ("gguf", count))
            info = client.info("smol")
            self.assertEqual(len(info["tensors"]), count)
            self.assertEqual(info["architecture"], loaded["architecture"])


class LifecycleTests(unittest.TestCase):
    def test_context_manager_shuts_the_daemon_down(self):
        with start() as client:
            client.list_models()
            self.assertIsNone(client.returncode)
        self.assertEqual(client.returncode, 0)
        with self.assertRaises(loquat.DaemonExited):
            client.list_models()

    def test_daemon_killed_between_calls_raises(self):
        client = start()
        self.addCleanup(client.close)
        os.kill(client.pid, signal.SIGKILL)
        with self.assertRaises(loquat.DaemonExited) as caught:
            client.call("model/list", timeout=CALL_TIMEOUT)
        self.assertIn("signal 9", str(caught.exception))
        self.assertEqual(client.close(), -signal.SIGKILL)

    def test_daemon_dies_with_its_client(self):
        self.assertFalse(daemon_outlives_killed_parent("loquat.Client(stderr=open(os.devnull, 'w'))"), "loquatd outlived its client")

    def test_missing_daemon_is_a_clear_error(self):
        with self.assertRaises(FileNotFoundError):
            loquat.Client("/nonexistent/loquatd")


if __name__ == "__main__":
    unittest.main()
