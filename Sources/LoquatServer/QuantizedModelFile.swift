import Checkpoints
import JSON
import JSONRPC
import Quantization
import Tensors

/// The loquat format on disk: one safetensors file holding the untouched tensors under their
/// own names and every quantized layer's record tensors as `loquat:<layer>:<part>`
/// (`<part>` is `child.part` for a nested weight), with `__metadata__`:
///
/// - `format`: `pt`; `loquat.format`: the record layout version (`LoquatFormat.version`);
/// - `loquat.model`: JSON `{tensorOrder: [name…], ggmlTensors: {name: {dtype, shape}},
///   layers: [{name, sourceDType, record, report?}]}` where `record` is `{family, shape, spec,
///   integers, strings, tensors: [part…], children}` and `spec` uses `quantize`'s param names.
///
/// Untouched GGUF block tensors (a Q4_1 embedding) keep their blocks: safetensors has no such
/// dtype, so their bytes are stored as U8 `loquat:ggml:<name>` and `ggmlTensors` says what they are.
///
/// Every number that dequantization reads is in a tensor, so `model/load` gives back weights
/// whose `dequantized()` is bit-identical.
enum QuantizedModelFile {
    static let tensorPrefix = "loquat:"
    static let blockPrefix = "loquat:ggml:"
    static let versionKey = "loquat.format"
    static let modelKey = "loquat.model"

    // MARK: Writing

    /// The tensors and metadata of `model` (untouched tensors shared, not copied).
    static func encode(_ model: QuantizedModel) throws -> (tensors: [Tensor], metadata: [String: String]) {
        var tensors: [Tensor] = []
        var blockTensors = JSONObject()
        for tensor in model.untouchedTensors {
            if tensor.dtype.isBlockQuantized {
                // The block bytes as they are; `shape` and `dtype` in the metadata restore them.
                tensors.append(LoquatFormat.bytesTensor(blockPrefix + tensor.name, Array(tensor.storage.bytes)))
                blockTensors[tensor.name] = ["dtype": .string(tensor.dtype.rawValue), "shape": .ints(tensor.shape)]
            } else {
                tensors.append(tensor)
            }
        }
        var layers: [JSONValue] = []
        for layer in model.orderedLayers {
            let record: LoquatRecord
            do {
                record = try LoquatFormat.encode(layer.weight)
            } catch let error as LoquatFormatError {
                throw QuantizedSaveError(code: RPCError.Code.unsupported, format: "loquat", param: "format", layer: layer.name,
                                         reason: "layer \(layer.name): \(error)")
            }
            var entry: JSONObject = ["name": .string(layer.name), "sourceDType": .string(layer.sourceDType.rawValue),
                                     "record": try recordJSON(record, layer: layer.name, path: "", tensors: &tensors)]
            if let report = layer.report {
                entry["report"] = ["relativeError": .double(report.relativeError), "maxAbsError": .double(report.maxAbsError),
                                   "sqnrDb": .double(report.sqnrDecibels),
                                   "outputRelativeError": report.outputRelativeError.map(JSONValue.double) ?? .null]
            }
            layers.append(.object(entry))
        }
        let description: JSONValue = ["tensorOrder": .strings(model.tensorNames), "ggmlTensors": .object(blockTensors),
                                      "layers": .array(layers)]
        let metadata = ["format": "pt", versionKey: String(LoquatFormat.version),
                        modelKey: try JSON.serializeToString(description)]
        return (tensors, metadata)
    }

    private static func recordJSON(_ record: LoquatRecord, layer: String, path: String, tensors: inout [Tensor]) throws -> JSONValue {
        var parts: [String] = []
        for (part, tensor) in record.tensors.sorted(by: { $0.key < $1.key }) {
            tensors.append(tensor.renamed(tensorPrefix + layer + ":" + path + part))
            parts.append(part)
        }
        var children = JSONObject()
        for (role, child) in record.children.sorted(by: { $0.key < $1.key }) {
            children[role] = try recordJSON(child, layer: layer, path: path + role + ".", tensors: &tensors)
        }
        var spec = QuantizeLedger.specFields(record.spec)
        if record.spec.method == .gptq {
            let options = record.spec.gptq
            spec["gptq"] = ["dampening": .double(options.dampening), "blockSize": .int(options.blockSize),
                            "actOrder": .bool(options.actOrder), "grid": .string(options.grid.rawValue)]
        }
        return [
            "family": .string(record.family),
            "shape": .ints([record.rowCount, record.columnCount]),
            "spec": .object(spec),
            "integers": .object(JSONObject(record.integers.sorted { $0.key < $1.key }.map { (key: $0.key, value: .int($0.value)) })),
            "strings": .object(JSONObject(record.strings.sorted { $0.key < $1.key }.map { (key: $0.key, value: .string($0.value)) })),
            "tensors": .strings(parts),
            "children": .object(children),
        ]
    }

    // MARK: Reading

    /// The quantized model in a loaded checkpoint that is a loquat file, or nil for any other
    /// checkpoint. The untouched tensors stay the checkpoint's (mapped, not copied).
    static func decode(_ checkpoint: LoadedCheckpoint) throws -> QuantizedModel? {
        guard checkpoint.format == .safetensors, checkpoint.sourceFiles.count == 1,
              checkpoint.tensors.contains(where: { $0.name.hasPrefix(tensorPrefix) }) else { return nil }
        let file = try SafetensorsFile(path: checkpoint.sourceFiles[0])
        guard let version = file.metadata[versionKey] else { return nil }
        guard version == String(LoquatFormat.version) else {
            throw LoquatFormatError.malformed("\(file.path): loquat format version \(version); this build reads \(LoquatFormat.version)")
        }
        guard let text = file.metadata[modelKey], let description = try? JSON.parse(text),
              let order = description["tensorOrder"]?.arrayValue?.compactMap(\.stringValue),
              let entries = description["layers"]?.arrayValue else {
            throw LoquatFormatError.malformed("\(file.path): the \(modelKey) metadata is missing or not the expected JSON")
        }
        var layers: [String: QuantizedLayer] = [:]
        for entry in entries {
            guard let name = entry["name"]?.stringValue, let recordValue = entry["record"],
                  let dtype = entry["sourceDType"]?.stringValue.flatMap(DType.init(rawValue:)) else {
                throw LoquatFormatError.malformed("\(file.path): a layer entry lacks name, sourceDType or record")
            }
            let record = try readRecord(recordValue, layer: name, path: "", checkpoint: checkpoint)
            let weight = try LoquatFormat.decode(record)
            layers[name] = QuantizedLayer(name: name, weight: weight, sourceDType: dtype, report: entry["report"].flatMap(readReport))
        }
        var untouched = checkpoint.tensors.filter { !$0.name.hasPrefix(tensorPrefix) }
        for (name, info) in description["ggmlTensors"]?.objectValue ?? JSONObject() {
            guard let dtype = info["dtype"]?.stringValue.flatMap(DType.init(rawValue:)), dtype.isBlockQuantized,
                  let shape = info["shape"]?.arrayValue?.compactMap(\.intValue),
                  let stored = checkpoint.tensor(named: blockPrefix + name), stored.dtype == .u8 else {
                throw LoquatFormatError.malformed("\(file.path): ggmlTensors entry \(name) is not a block tensor stored as \(blockPrefix)\(name)")
            }
            do {
                untouched.append(try Tensor(name: name, dtype: dtype, shape: shape, storage: stored.storage))
            } catch {
                throw LoquatFormatError.malformed("\(file.path): \(name): \(error)")
            }
        }
        let known = Set(untouched.map(\.name)).union(layers.keys)
        guard Set(order) == known, order.count == known.count else {
            throw LoquatFormatError.malformed("\(file.path): tensorOrder does not list exactly the file's tensors and layers")
        }
        let base = checkpoint.replacingTensors(untouched)
        return QuantizedModel(sourceHandle: nil, base: base, tensorNames: order, layers: layers, request: ["path": .string(checkpoint.path)])
    }

    private static func readRecord(_ value: JSONValue, layer: String, path: String, checkpoint: LoadedCheckpoint) throws -> LoquatRecord {
        guard let family = value["family"]?.stringValue, let shape = value["shape"]?.arrayValue?.compactMap(\.intValue), shape.count == 2,
              let specObject = value["spec"]?.objectValue, let parts = value["tensors"]?.arrayValue?.compactMap(\.stringValue) else {
            throw LoquatFormatError.malformed("layer \(layer): a record lacks family, shape, spec or tensors")
        }
        var record = LoquatRecord(family: family, rowCount: shape[0], columnCount: shape[1], spec: try readSpec(specObject, layer: layer))
        for (key, member) in value["integers"]?.objectValue ?? JSONObject() {
            guard let integer = member.intValue else { throw LoquatFormatError.malformed("layer \(layer): integer \(key) is not an integer") }
            record.integers[key] = integer
        }
        for (key, member) in value["strings"]?.objectValue ?? JSONObject() {
            guard let string = member.stringValue else { throw LoquatFormatError.malformed("layer \(layer): string \(key) is not a string") }
            record.strings[key] = string
        }
        for part in parts {
            let name = tensorPrefix + layer + ":" + path + part
            guard let tensor = checkpoint.tensor(named: name) else { throw LoquatFormatError.malformed("tensor \(name) is missing") }
            record.tensors[part] = tensor
        }
        for (role, child) in value["children"]?.objectValue ?? JSONObject() {
            record.children[role] = try readRecord(child, layer: layer, path: path + role + ".", checkpoint: checkpoint)
        }
        return record
    }

    private static func readSpec(_ object: JSONObject, layer: String) throws -> QuantizationSpec {
        var fields = object
        let gptq = fields["gptq"]
        fields["gptq"] = nil
        do {
            guard var spec = try SpecReader(object: fields, prefix: "spec.").spec(methodRequired: true) else { throw LoquatFormatError.malformed("no spec") }
            if let gptq {
                guard let dampening = gptq["dampening"]?.doubleValue, let blockSize = gptq["blockSize"]?.intValue,
                      let actOrder = gptq["actOrder"]?.boolValue,
                      let grid = gptq["grid"]?.stringValue.flatMap(QuantizationMethod.init(rawValue:)) else {
                    throw LoquatFormatError.malformed("layer \(layer): spec.gptq lacks dampening, blockSize, actOrder or grid")
                }
                spec.gptq.dampening = dampening
                spec.gptq.blockSize = blockSize
                spec.gptq.actOrder = actOrder
                spec.gptq.grid = grid
            }
            return spec
        } catch let error as RPCError {
            throw LoquatFormatError.malformed("layer \(layer): \(error.message)")
        }
    }

    private static func readReport(_ value: JSONValue) -> LayerReport? {
        guard let relative = value["relativeError"]?.doubleValue, let maxAbs = value["maxAbsError"]?.doubleValue else { return nil }
        return LayerReport(relativeError: relative, maxAbsError: maxAbs, sqnrDecibels: value["sqnrDb"]?.doubleValue ?? .infinity,
                           outputRelativeError: value["outputRelativeError"]?.doubleValue)
    }
}
