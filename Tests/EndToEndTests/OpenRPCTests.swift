import Foundation
import JSON
import TestSupport
import XCTest

/// Holds protocol/openrpc.json to the daemon it describes:
/// - its methods are exactly what `initialize` lists in `capabilities.methods`;
/// - every example pairing is consistent (params declared and valid, result and error values
///   valid, error codes declared in the method's `errors`);
/// - replayed against the built daemon, every example pairing gets a result that satisfies the
///   method's result schema (and equals the example in the `x-compare` keys) or the error code
///   the example shows, and every `$/progress` it sends satisfies `x-notifications`.
///
/// Replay conventions (Tests/Generators/README-openrpc.md): a param with `x-substitute`
/// `sample:smollm2[/rel]`, `sample:minilm[/rel]` or `temporary:rel` gets a sample model path or a
/// path in a fresh temporary directory; a pairing with any other `path` (except under
/// `/nonexistent/`) or with `x-live` is not replayed. Notifications are sent as notifications.
final class OpenRPCTests: XCTestCase {
    static var documentURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("protocol/openrpc.json")
    }

    /// The order in which methods' examples are replayed, so that each sees the state the ones
    /// before it made (models loaded before they are described, saved, unloaded; shutdown last).
    static let replayOrder = ["initialize", "initialized", "$/cancelRequest", "model/load", "model/info", "model/list",
                              "calibrate", "quantize", "quantize/plan", "initAdapter", "adapter/list", "adapter/save",
                              "adapter/load", "adapter/unload", "merge", "model/unmerge", "extractAdapter", "evaluate", "model/save", "model/unload", "shutdown", "exit"]

    private func loadDocument() throws -> OpenRPCDocument {
        let text = try String(contentsOf: Self.documentURL, encoding: .utf8)
        return OpenRPCDocument(try JSON.parse(text))
    }

    func testMethodsAreWhatInitializeLists() throws {
        let document = try loadDocument()
        XCTAssertEqual(document.value["openrpc"], "1.3.2")
        XCTAssertEqual(document.value["info"]?["version"], "0.1.0")
        let session = try DaemonSession()
        let response = try session.request("initialize", [:], id: 1)
        let listed = try XCTUnwrap(response["result"]?["capabilities"]?["methods"]?.arrayValue?.compactMap(\.stringValue))
        XCTAssertEqual(Set(document.methods.map(\.name)), Set(listed), "openrpc.json methods vs initialize's capabilities.methods")
        XCTAssertEqual(document.methods.count, Set(document.methods.map(\.name)).count, "method names are unique")
        XCTAssertEqual(Set(document.methods.map(\.name)), Set(Self.replayOrder), "every method has a place in replayOrder")
        XCTAssertEqual(session.finish(), 0)
    }

    /// Checks the document on its own: no daemon needed.
    func testExamplesAreConsistent() throws {
        let document = try loadDocument()
        let validator = SchemaValidator(document: document.value)
        for method in document.methods + document.serverNotifications {
            let declared = Set(method.errorCodes(document))
            XCTAssertEqual(method.value["paramStructure"], "by-name", method.name)
            XCTAssertEqual(method.errorCodes(document).count, declared.count, "\(method.name): error codes are unique")
            let parameters = method.parameters(document)
            XCTAssertFalse(method.examples(document).isEmpty, "\(method.name) has an example")
            for example in method.examples(document) {
                let label = "\(method.name) example '\(example["name"]?.stringValue ?? "?")'"
                let isError = example["error"] != nil
                let given = example["params"]?.arrayValue ?? []
                for parameter in given {
                    let name = parameter["name"]?.stringValue ?? ""
                    guard let descriptor = parameters.first(where: { $0["name"]?.stringValue == name }) else {
                        if !isError { XCTFail("\(label): param \(name) is not declared") }
                        continue
                    }
                    for problem in validator.problems(parameter["value"] ?? .null, descriptor["schema"] ?? true, path: name) {
                        XCTFail("\(label): \(problem)")
                    }
                }
                if !isError {
                    for descriptor in parameters where descriptor["required"] == true {
                        let name = descriptor["name"]?.stringValue ?? ""
                        XCTAssertTrue(given.contains { $0["name"]?.stringValue == name }, "\(label): required param \(name) is missing")
                    }
                }
                if let result = example["result"] {
                    let schema = try XCTUnwrap(method.value["result"].map(document.deref)?["schema"], "\(label): the method has no result")
                    for problem in validator.problems(result["value"] ?? .null, schema, path: "result") { XCTFail("\(label): \(problem)") }
                }
                if let error = example["error"] {
                    XCTAssertNil(example["result"], "\(label): result and error are exclusive")
                    let value = error["value"] ?? .null
                    for problem in validator.problems(value, ["$ref": "#/components/schemas/ErrorObject"], path: "error") {
                        XCTFail("\(label): \(problem)")
                    }
                    let code = try XCTUnwrap(value["code"]?.intValue, "\(label): error code")
                    XCTAssertTrue(declared.contains(code), "\(label): error code \(code) is not declared in \(method.name)'s errors \(declared.sorted())")
                }
            }
        }
    }

    /// Replays every example pairing against one daemon; SmolLM2 is loaded once.
    func testExamplesAgainstTheDaemon() throws {
        guard let smolLM2 = SampleModels.smolLM2GGUF, let miniLM = SampleModels.miniLMDirectory else {
            throw XCTSkip("the sample models are missing (scripts/fetch-models)")
        }
        let document = try loadDocument()
        let validator = SchemaValidator(document: document.value)
        let progress = try XCTUnwrap(document.serverNotifications.first { $0.name == "$/progress" }, "x-notifications lists $/progress")
        let temporary = makeTemporaryDirectory("openrpc")
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let session = try DaemonSession()
        var nextID: Int64 = 1
        var replayed = 0
        var skipped: [String] = []

        func substitute(_ spec: String) -> String? {
            let (kind, rest) = spec.firstIndex(of: ":").map { (String(spec[..<$0]), String(spec[spec.index(after: $0)...])) } ?? (spec, "")
            switch kind {
            case "temporary": return temporary + "/" + rest
            case "sample":
                let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
                let base: String
                switch parts.first {
                case "smollm2": base = smolLM2
                case "minilm": base = miniLM
                default: return nil
                }
                return parts.count > 1 ? base + "/" + parts[1] : base
            default: return nil
            }
        }

        for methodName in Self.replayOrder {
            guard let method = document.methods.first(where: { $0.name == methodName }) else {
                XCTFail("\(methodName) is not in openrpc.json")
                continue
            }
            let isNotification = method.value["result"] == nil
            let resultSchema = method.value["result"].map(document.deref)?["schema"]
            let declared = Set(method.errorCodes(document))
            for example in method.examples(document) {
                let label = "\(methodName) example '\(example["name"]?.stringValue ?? "?")'"
                if example["x-live"] != nil { skipped.append(label); continue }
                var params = JSONObject()
                var replayable = true
                var workDoneToken: JSONValue?
                for parameter in example["params"]?.arrayValue ?? [] {
                    let name = parameter["name"]?.stringValue ?? ""
                    var value = parameter["value"] ?? .null
                    if let spec = parameter["x-substitute"]?.stringValue {
                        guard let path = substitute(spec) else { XCTFail("\(label): unknown x-substitute \(spec)"); replayable = false; break }
                        value = .string(path)
                    } else if name == "path", !(value.stringValue ?? "").hasPrefix("/nonexistent/") {
                        replayable = false
                    }
                    if name == "workDoneToken" { workDoneToken = value }
                    params[name] = value
                }
                guard replayable else { skipped.append(label); continue }
                replayed += 1

                if isNotification {
                    if methodName == "exit" {
                        try session.send(["jsonrpc": "2.0", "method": "exit", "params": .object(params)])
                        XCTAssertEqual(session.finish(), 0, "\(label): exit after shutdown ends the daemon with 0")
                        XCTAssertEqual(replayOrderTail(after: methodName), [], "exit is replayed last")
                        continue
                    }
                    try session.send(["jsonrpc": "2.0", "method": .string(methodName), "params": .object(params)])
                    continue
                }

                session.notifications = []
                let id = JSONValue.integer(nextID)
                nextID += 1
                let response = try session.request(methodName, .object(params), id: id)
                XCTAssertEqual(response["id"], id, label)
                let shown = (try? JSON.serializeToString(response)) ?? "?"

                if let expected = example["result"]?["value"] {
                    guard let result = response["result"] else {
                        XCTFail("\(label): expected a result, got \(shown)")
                        continue
                    }
                    if let schema = resultSchema {
                        for problem in validator.problems(result, schema, path: "result") { XCTFail("\(label): live \(problem)\n  got: \(shown)") }
                    }
                    for key in example["x-compare"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                        XCTAssertTrue(SchemaValidator.same(expected[key] ?? .null, result[key] ?? .null),
                                      "\(label): \(key) is \(result[key].flatMap { try? JSON.serializeToString($0) } ?? "missing"), the example says \(expected[key].flatMap { try? JSON.serializeToString($0) } ?? "nothing")")
                    }
                } else if let expected = example["error"]?["value"] {
                    guard let error = response["error"] else {
                        XCTFail("\(label): expected error \(expected["code"]?.intValue ?? 0), got \(shown)")
                        continue
                    }
                    let code = error["code"]?.intValue ?? 0
                    XCTAssertEqual(code, expected["code"]?.intValue, "\(label): live error code\n  got: \(shown)")
                    XCTAssertTrue(declared.contains(code), "\(label): live error code \(code) is not declared")
                    for problem in validator.problems(error, ["$ref": "#/components/schemas/ErrorObject"], path: "error") {
                        XCTFail("\(label): live \(problem)")
                    }
                    for (key, value) in expected["data"]?.objectValue ?? JSONObject() {
                        let live = error["data"]?[key]
                        XCTAssertNotNil(live, "\(label): live error data has no \(key)\n  got: \(shown)")
                        if ["param", "handle", "method"].contains(key) { XCTAssertEqual(live, value, "\(label): data.\(key)") }
                    }
                }

                // Progress sent for this request.
                let notifications = session.notifications.filter { $0["method"] == "$/progress" }
                if let workDoneToken, example["result"] != nil {
                    let kinds = notifications.filter { $0["params"]?["token"] == workDoneToken }.compactMap { $0["params"]?["value"]?["kind"]?.stringValue }
                    XCTAssertEqual(kinds.first, "begin", "\(label): progress begins")
                    XCTAssertEqual(kinds.last, "end", "\(label): progress ends")
                }
                for notification in notifications {
                    let params = notification["params"]?.objectValue ?? JSONObject()
                    let descriptors = progress.parameters(document)
                    for (key, value) in params {
                        guard let descriptor = descriptors.first(where: { $0["name"]?.stringValue == key }) else {
                            XCTFail("$/progress has an undeclared param \(key)")
                            continue
                        }
                        for problem in validator.problems(value, descriptor["schema"] ?? true, path: key) {
                            XCTFail("\(label): $/progress \(problem)")
                        }
                    }
                    for descriptor in descriptors where descriptor["required"] == true {
                        XCTAssertNotNil(params[descriptor["name"]?.stringValue ?? ""], "$/progress lacks \(descriptor["name"]?.stringValue ?? "")")
                    }
                }
            }
        }
        XCTAssertGreaterThan(replayed, 15, "most examples are replayed (skipped: \(skipped))")
        print("OpenRPCTests: replayed \(replayed) example pairings; not replayed: \(skipped.joined(separator: "; "))")
    }

    private func replayOrderTail(after name: String) -> [String] {
        Array(Self.replayOrder.drop { $0 != name }.dropFirst())
    }
}

/// The parts of an OpenRPC document the tests read, with local `$ref`s followed.
struct OpenRPCDocument {
    let value: JSONValue

    init(_ value: JSONValue) { self.value = value }

    struct Method {
        let name: String
        let value: JSONValue

        func parameters(_ document: OpenRPCDocument) -> [JSONValue] { (value["params"]?.arrayValue ?? []).map(document.deref) }
        func examples(_ document: OpenRPCDocument) -> [JSONValue] { (value["examples"]?.arrayValue ?? []).map(document.deref) }
        func errorCodes(_ document: OpenRPCDocument) -> [Int] {
            (value["errors"]?.arrayValue ?? []).compactMap { document.deref($0)["code"]?.intValue }
        }
    }

    var methods: [Method] { methods(in: value["methods"]) }
    /// `x-notifications`: server → client notifications, shaped as methods without a result.
    var serverNotifications: [Method] { methods(in: value["x-notifications"]) }

    private func methods(in list: JSONValue?) -> [Method] {
        (list?.arrayValue ?? []).map(deref).map { Method(name: $0["name"]?.stringValue ?? "", value: $0) }
    }

    /// Follows `{"$ref": "#/…"}` (repeatedly); anything else is returned as it is.
    func deref(_ node: JSONValue) -> JSONValue {
        var node = node
        var hops = 0
        while let reference = node["$ref"]?.stringValue, let target = resolve(reference), hops < 32 {
            node = target
            hops += 1
        }
        return node
    }

    /// A local JSON pointer (`#/components/schemas/Foo`).
    func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var node = value
        for token in reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let array = node.arrayValue {
                guard let index = Int(key), array.indices.contains(index) else { return nil }
                node = array[index]
            } else if let next = node[key] {
                node = next
            } else {
                return nil
            }
        }
        return node
    }
}

/// The subset of JSON Schema draft-07 that openrpc.json uses: `type`, `enum`, `required`,
/// `properties`, `additionalProperties`, `items`, `$ref` (local), `allOf`, `anyOf`, `oneOf`,
/// `minimum`, `maximum`, `minLength`, boolean schemas, and annotations. A schema using any other
/// keyword is reported, so the document cannot silently outgrow the checker.
struct SchemaValidator {
    let document: OpenRPCDocument

    init(document: JSONValue) { self.document = OpenRPCDocument(document) }

    static let annotations: Set<String> = ["title", "description", "default", "examples", "$comment"]
    static let keywords: Set<String> = ["type", "enum", "required", "properties", "additionalProperties", "items", "$ref",
                                        "allOf", "anyOf", "oneOf", "minimum", "maximum", "minLength"]

    /// Every way `value` breaks `schema`, as "path: problem"; empty when it conforms.
    func problems(_ value: JSONValue, _ schema: JSONValue, path: String) -> [String] {
        if case let .bool(accepts) = schema { return accepts ? [] : ["\(path): no value is allowed"] }
        guard let object = schema.objectValue else { return ["\(path): the schema is not an object or boolean"] }
        var found: [String] = []
        for key in object.keys where !Self.keywords.contains(key) && !Self.annotations.contains(key) {
            found.append("\(path): schema keyword \(key) is not implemented by the test's validator")
        }
        if let reference = object["$ref"]?.stringValue {
            guard let target = document.resolve(reference) else { return found + ["\(path): $ref \(reference) does not resolve"] }
            found += problems(value, target, path: path)
        }
        if let type = object["type"] {
            let types = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            if !types.contains(where: { Self.matches(value, type: $0) }) {
                return found + ["\(path): expected \(types.joined(separator: " or ")), got \(value.typeName)"]
            }
        }
        if let choices = object["enum"]?.arrayValue, !choices.contains(where: { Self.same($0, value) }) {
            found.append("\(path): \((try? JSON.serializeToString(value)) ?? "?") is not one of \((try? JSON.serializeToString(.array(choices))) ?? "?")")
        }
        if let minimum = object["minimum"]?.doubleValue, let number = value.doubleValue, number < minimum {
            found.append("\(path): \(number) is below the minimum \(minimum)")
        }
        if let maximum = object["maximum"]?.doubleValue, let number = value.doubleValue, number > maximum {
            found.append("\(path): \(number) is above the maximum \(maximum)")
        }
        if let minLength = object["minLength"]?.intValue, let string = value.stringValue, string.unicodeScalars.count < minLength {
            found.append("\(path): shorter than \(minLength)")
        }
        if let members = value.objectValue {
            for name in object["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                found.append("\(path): required member \(name) is missing")
            }
            let properties = object["properties"]?.objectValue ?? JSONObject()
            for (name, member) in members {
                if let property = properties[name] {
                    found += problems(member, property, path: "\(path).\(name)")
                } else if let additional = object["additionalProperties"] {
                    found += problems(member, additional, path: "\(path).\(name)")
                }
            }
        }
        if let elements = value.arrayValue, let items = object["items"] {
            for (index, element) in elements.enumerated() { found += problems(element, items, path: "\(path)[\(index)]") }
        }
        for sub in object["allOf"]?.arrayValue ?? [] { found += problems(value, sub, path: path) }
        if let choices = object["anyOf"]?.arrayValue, !choices.contains(where: { problems(value, $0, path: path).isEmpty }) {
            found.append("\(path): matches none of anyOf")
        }
        if let choices = object["oneOf"]?.arrayValue {
            let matching = choices.filter { problems(value, $0, path: path).isEmpty }.count
            if matching != 1 { found.append("\(path): matches \(matching) of oneOf, not exactly one") }
        }
        return found
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("number", .integer), ("number", .number), ("integer", .integer): return true
        case let ("integer", .number(number)): return number.rounded() == number
        default: return false
        }
    }

    /// JSON equality with numbers compared by value (1 == 1.0).
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        switch (a, b) {
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case let (.object(x), .object(y)):
            return x.count == y.count && x.allSatisfy { entry in y[entry.key].map { same(entry.value, $0) } ?? false }
        default: return a == b
        }
    }
}
