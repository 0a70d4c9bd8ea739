#!/usr/bin/env python3
"""Checks protocol/openrpc.json offline. Needs only the `jsonschema` package.

    python3 Tests/Generators/validate_openrpc.py [--meta-schema DIR]

Always: every `$ref` resolves; method and param names are unique, required params come
first; every example param validates against its param schema (an error example may use a
param the method does not declare, to show it being refused), every result example against
the result schema, every error example against components.schemas.ErrorObject, and every
error code used in an example is declared in the method's `errors`. The same for the
`x-notifications` entries.

With --meta-schema DIR (holding `openrpc-1.3.json`, open-rpc/spec spec/1.3/schema.json, and
`json-schema-tools.json`, json-schema-tools/meta-schema schema.json, which the first one
`$ref`s as https://meta.json-schema.tools): also validates the document, and each
`x-notifications` entry as a methodObject, against the OpenRPC 1.3 meta-schema. The
meta-schemas are not kept in this repository; see README-openrpc.md.

Exit status 0 when everything holds, 1 otherwise.
"""
import argparse
import json
import os
import sys

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_URI = "urn:loquat:openrpc"


def pointer(parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(doc, ref):
    if not ref.startswith("#/"):
        raise KeyError(f"not a local reference: {ref}")
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def all_refs(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from all_refs(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from all_refs(value, path + (index,))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--document", default=os.path.join(ROOT, "protocol", "openrpc.json"))
    parser.add_argument("--meta-schema", metavar="DIR")
    args = parser.parse_args()

    with open(args.document, encoding="utf-8") as handle:
        doc = json.load(handle)
    problems = []

    for path, ref in all_refs(doc):
        try:
            resolve(doc, ref)
        except (KeyError, IndexError, ValueError):
            problems.append(f"{pointer(path)}: $ref {ref} does not resolve")

    registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT7))

    def check(value, parts, where):
        validator = jsonschema.Draft7Validator({"$ref": DOC_URI + pointer(parts)}, registry=registry)
        try:
            for error in validator.iter_errors(value):
                problems.append(f"{where}: {error.message} (at {'/'.join(map(str, error.absolute_path)) or 'top'})")
        except Exception as error:  # an unresolvable $ref or an unknown type in the schema itself
            problems.append(f"{where}: the schema cannot be applied: {type(error).__name__}: {str(error).splitlines()[0]}")

    def deref(node):
        return resolve(doc, node["$ref"]) if isinstance(node, dict) and "$ref" in node else node

    def check_method(method, base, is_notification):
        name = method["name"]
        params = [deref(p) for p in method["params"]]
        names = [p["name"] for p in params]
        if len(set(names)) != len(names):
            problems.append(f"{name}: duplicate param names")
        seen_optional = False
        for p in params:
            if p.get("required", False) and seen_optional:
                problems.append(f"{name}: required param {p['name']} after an optional one")
            seen_optional = seen_optional or not p.get("required", False)
        if method.get("paramStructure") != "by-name":
            problems.append(f"{name}: paramStructure should be by-name")
        if is_notification and "result" in method:
            problems.append(f"{name}: a notification has no result")
        codes = [deref(e)["code"] for e in method.get("errors", [])]
        if len(set(codes)) != len(codes):
            problems.append(f"{name}: duplicate error codes")
        for index, example in enumerate(method.get("examples", [])):
            example = deref(example)
            where = f"{name} example '{example['name']}'"
            is_error = "error" in example
            given = [p["name"] for p in example["params"]]
            for p in params:
                if p.get("required") and p["name"] not in given and not is_error:
                    problems.append(f"{where}: required param {p['name']} missing")
            for p in example["params"]:
                if p["name"] not in names:
                    if not is_error:
                        problems.append(f"{where}: param {p['name']} is not declared")
                    continue
                at = names.index(p["name"])
                raw = method["params"][at]
                parts = list(base) + ["params", at, "schema"]
                if "$ref" in raw:
                    parts = raw["$ref"][2:].split("/") + ["schema"]
                check(p["value"], parts, f"{where}: param {p['name']}")
            if "result" in example:
                if "result" not in method:
                    problems.append(f"{where}: a result example for a method without result")
                else:
                    check(example["result"]["value"], list(base) + ["result", "schema"], f"{where}: result")
            if is_error:
                if "result" in example:
                    problems.append(f"{where}: both result and error")
                value = example["error"]["value"]
                check(value, ["components", "schemas", "ErrorObject"], f"{where}: error")
                if value.get("code") not in codes:
                    problems.append(f"{where}: error code {value.get('code')} is not in the method's errors")

    method_names = [deref(m)["name"] for m in doc["methods"]]
    if len(set(method_names)) != len(method_names):
        problems.append("duplicate method names")
    for index, method in enumerate(doc["methods"]):
        check_method(deref(method), ["methods", index], is_notification="result" not in deref(method))
    for index, note in enumerate(doc.get("x-notifications", [])):
        check_method(note, ["x-notifications", index], is_notification=True)

    if args.meta_schema:
        with open(os.path.join(args.meta_schema, "openrpc-1.3.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
        with open(os.path.join(args.meta_schema, "json-schema-tools.json"), encoding="utf-8") as handle:
            json_schema_meta = Resource.from_contents(json.load(handle), default_specification=DRAFT7)
        meta_registry = Registry().with_resources([
            ("https://meta.json-schema.tools", json_schema_meta),
            ("https://meta.json-schema.tools/", json_schema_meta),
            ("https://meta.open-rpc.org/", Resource.from_contents(meta, default_specification=DRAFT7)),
        ])
        validator = jsonschema.Draft7Validator(meta, registry=meta_registry)
        for error in validator.iter_errors(doc):
            problems.append(f"meta-schema: {error.message} (at {'/'.join(map(str, error.absolute_path)) or 'top'})")
        method_validator = jsonschema.Draft7Validator({"$ref": "https://meta.open-rpc.org/#/definitions/methodObject"},
                                                      registry=meta_registry)
        for index, note in enumerate(doc.get("x-notifications", [])):
            for error in method_validator.iter_errors(note):
                problems.append(f"meta-schema, x-notifications/{index}: {error.message}")
        print(f"meta-schema: validated against OpenRPC {meta['properties']['openrpc']['enum'][0]} meta-schema")
    else:
        print("meta-schema: not checked (no --meta-schema)")

    for problem in problems:
        print("problem:", problem)
    print(f"{len(method_names)} methods, {len(doc.get('x-notifications', []))} server notifications, "
          f"{sum(len(deref(m).get('examples', [])) for m in doc['methods'])} example pairings: "
          + ("OK" if not problems else f"{len(problems)} problems"))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
