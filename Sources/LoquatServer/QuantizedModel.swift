import Checkpoints
import JSON
import Quantization
import Tensors

/// What quantizing one layer cost, as `quantize` reports it (the error ledger).
struct LayerReport: Sendable {
    /// ‖W − Q‖_F / ‖W‖_F.
    var relativeError: Double
    /// max |W − Q|.
    var maxAbsError: Double
    /// 10·log10(‖W‖² / ‖W − Q‖²); +∞ (null on the wire) for an exact copy.
    var sqnrDecibels: Double
    /// ‖X(W − Q)ᵀ‖ / ‖XWᵀ‖ when calibration inputs were given.
    var outputRelativeError: Double?

    init(_ metrics: WeightErrorMetrics, outputRelativeError: Double? = nil) {
        relativeError = metrics.relativeError
        maxAbsError = metrics.maxAbsError
        sqnrDecibels = metrics.sqnrDecibels
        self.outputRelativeError = outputRelativeError
    }

    init(relativeError: Double, maxAbsError: Double, sqnrDecibels: Double, outputRelativeError: Double?) {
        self.relativeError = relativeError
        self.maxAbsError = maxAbsError
        self.sqnrDecibels = sqnrDecibels
        self.outputRelativeError = outputRelativeError
    }
}

/// One quantized layer: the stored form, the dtype its source tensor had, and its ledger entry
/// (nil for a layer read back from a loquat file whose record has none).
struct QuantizedLayer: Sendable {
    let name: String
    let weight: any QuantizedWeight
    let sourceDType: DType
    let report: LayerReport?

    var shape: [Int] { [weight.rowCount, weight.columnCount] }
    /// Bytes the stored form needs, ⌈bits / 8⌉.
    var byteCount: Int { (weight.storageBitCount + 7) / 8 }
}

/// A quantized variant of a model: the quantized layers by name, and the base checkpoint that
/// every other tensor comes from, shared (no copy). Immutable once registered.
final class QuantizedModel: Sendable {
    /// The resident model it was made from; nil when read back from a loquat file.
    let sourceHandle: String?
    /// Untouched tensors are `base`'s; for a model made by `quantize` this is the source's
    /// checkpoint itself.
    let base: LoadedCheckpoint
    /// Every tensor name in checkpoint order, quantized layers in their original place.
    let tensorNames: [String]
    let layers: [String: QuantizedLayer]
    /// The params of the `quantize` request that made it (provenance), or of the file's record.
    let request: JSONValue

    init(sourceHandle: String?, base: LoadedCheckpoint, tensorNames: [String], layers: [String: QuantizedLayer], request: JSONValue) {
        self.sourceHandle = sourceHandle
        self.base = base
        self.tensorNames = tensorNames
        self.layers = layers
        self.request = request
    }

    /// Quantized layers in checkpoint order.
    var orderedLayers: [QuantizedLayer] { tensorNames.compactMap { layers[$0] } }

    /// The untouched tensors in checkpoint order.
    var untouchedTensors: [Tensor] { tensorNames.compactMap { layers[$0] == nil ? base.tensor(named: $0) : nil } }

    var parameterCount: Int {
        untouchedTensors.reduce(0) { $0 + ($1.dtype.isFloatingPoint || $1.dtype.isBlockQuantized ? $1.elementCount : 0) }
            + layers.values.reduce(0) { $0 + $1.weight.elementCount }
    }

    var byteCount: Int { untouchedTensors.reduce(0) { $0 + $1.byteCount } + layers.values.reduce(0) { $0 + $1.byteCount } }

    /// Stored bits per weight over the quantized layers.
    var bitsPerWeight: Double {
        let elements = layers.values.reduce(0) { $0 + $1.weight.elementCount }
        let bits = layers.values.reduce(0) { $0 + $1.weight.storageBitCount }
        return elements == 0 ? 0 : Double(bits) / Double(elements)
    }

    /// Methods used, in first-use order.
    var methods: [String] {
        var seen: [String] = []
        for layer in orderedLayers where !seen.contains(layer.weight.spec.method.rawValue) { seen.append(layer.weight.spec.method.rawValue) }
        return seen
    }

    /// The tensors a plain (dequantized) export writes, in order: untouched ones as they are,
    /// quantized layers as Float32 `dequantized()`. Dequantizes every layer, in parallel.
    func dequantizedTensors() -> [Tensor] {
        let ordered = orderedLayers
        var decoded = [Tensor?](repeating: nil, count: ordered.count)
        decoded.withUnsafeMutableBufferPointer { slots in
            let box = UncheckedSendable(slots)
            Parallel.forEach(ordered.count) { index in
                let layer = ordered[index]
                box.value[index] = Tensor(name: layer.name, shape: layer.shape, float32: layer.weight.dequantized().values)
            }
        }
        var byName: [String: Tensor] = [:]
        for (layer, tensor) in zip(ordered, decoded) { byName[layer.name] = tensor }
        return tensorNames.compactMap { byName[$0] ?? base.tensor(named: $0) }
    }
}

extension LoquatServer {
    /// The model/list and model/load summary of a quantized model: the source's format, path
    /// and architecture, plus `source` and a `quantization` digest.
    func quantizedSummary(of handle: String, _ model: QuantizedModel) -> JSONValue {
        let checkpoint = model.base
        return [
            "model": .string(handle),
            "path": .string(checkpoint.path),
            "format": .string(checkpoint.format.rawValue),
            "architecture": .string(checkpoint.architecture),
            "tensorCount": .int(model.tensorNames.count),
            "parameterCount": .int(model.parameterCount),
            "byteCount": .int(model.byteCount),
            "source": model.sourceHandle.map(JSONValue.string) ?? .null,
            "quantization": [
                "methods": .strings(model.methods),
                "layerCount": .int(model.layers.count),
                "bitsPerWeight": .double(QuantizeLedger.rounded(model.bitsPerWeight, places: 6)),
            ],
        ]
    }

    /// model/info of a quantized model: the summary, every tensor (quantized layers with their
    /// method, bits, group size, bits per weight and ledger), and the config.
    func quantizedInfo(of handle: String, _ model: QuantizedModel) -> JSONValue {
        guard case var .object(result) = quantizedSummary(of: handle, model) else { return .null }
        result["tensors"] = .array(model.tensorNames.compactMap { name in
            if let layer = model.layers[name] { return Self.tensorEntry(layer) }
            guard let tensor = model.base.tensor(named: name) else { return nil }
            return ["name": .string(tensor.name), "shape": .ints(tensor.shape), "dtype": .string(tensor.dtype.rawValue),
                    "byteCount": .int(tensor.byteCount)]
        })
        if let config = model.base.config { result["config"] = config.jsonObject() }
        return .object(result)
    }

    /// A quantized layer in model/info: `dtype` is the method name.
    static func tensorEntry(_ layer: QuantizedLayer) -> JSONValue {
        let spec = layer.weight.spec
        var entry: JSONObject = [
            "name": .string(layer.name), "shape": .ints(layer.shape), "dtype": .string(spec.method.rawValue),
            "byteCount": .int(layer.byteCount), "sourceDType": .string(layer.sourceDType.rawValue),
        ]
        for (key, value) in QuantizeLedger.specFields(spec) { entry[key] = value }
        entry["bitsPerWeight"] = .double(QuantizeLedger.rounded(layer.weight.bitsPerWeight, places: 6))
        if let report = layer.report { entry["relativeError"] = .double(report.relativeError) }
        return .object(entry)
    }
}
