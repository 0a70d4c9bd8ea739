import JSON
import Quantization

/// The JSON of `quantize`'s result and of its per-layer error ledger, and of a spec (the same
/// keys `quantize` and `plan` entries accept, so a ledger entry's spec can be sent back).
enum QuantizeLedger {
    /// `{model, source, bitsPerWeight, byteCount, layers, seconds}`. `bitsPerWeight` is over
    /// the quantized layers (every stored bit, outliers and codebooks included); `byteCount` is
    /// the whole model as held: untouched tensors as stored plus the quantized layers' bits.
    static func result(handle: String, model: QuantizedModel, seconds: Double) -> JSONValue {
        [
            "model": .string(handle),
            "source": model.sourceHandle.map(JSONValue.string) ?? .null,
            "bitsPerWeight": .double(model.bitsPerWeight),
            "byteCount": .int(model.byteCount),
            "layers": .array(model.orderedLayers.map(entry)),
            "seconds": .double(rounded(seconds, places: 6)),
        ]
    }

    /// `{name, shape, method, bits, groupSize, …spec, bitsPerWeight, relativeError, maxAbsError,
    /// sqnrDb, outputRelativeError?}`. `sqnrDb` is null for an exact copy (infinite).
    static func entry(_ layer: QuantizedLayer) -> JSONValue {
        var entry: JSONObject = ["name": .string(layer.name), "shape": .ints(layer.shape)]
        for (key, value) in specFields(layer.weight.spec) { entry[key] = value }
        entry["bitsPerWeight"] = .double(layer.weight.bitsPerWeight)
        if let report = layer.report {
            entry["relativeError"] = .double(report.relativeError)
            entry["maxAbsError"] = .double(report.maxAbsError)
            entry["sqnrDb"] = .double(report.sqnrDecibels)
            if let output = report.outputRelativeError { entry["outputRelativeError"] = .double(output) }
        }
        return .object(entry)
    }

    /// A spec as the params that would reproduce it: method, bits, groupSize always; the
    /// options that apply to the method; rotate and outliers when set.
    static func specFields(_ spec: QuantizationSpec) -> JSONObject {
        var fields: JSONObject = ["method": .string(spec.method.rawValue), "bits": .int(spec.bits), "groupSize": .int(spec.groupSize)]
        switch spec.method {
        case .int, .hqq, .gptq: fields["symmetric"] = .bool(spec.symmetric)
        case .nf4, .fp4: fields["doubleQuant"] = .bool(spec.doubleQuant)
        case .fp8: fields["fp8Format"] = .string(spec.fp8Format.rawValue)
        case .nf: break
        }
        if spec.clipSearch { fields["clipSearch"] = true }
        if let rotation = spec.rotation {
            fields["rotate"] = ["kind": .string(rotation.kind), "seed": .integer(Int64(bitPattern: rotation.seed))]
        }
        switch spec.outliers {
        case let .fraction(fraction)?: fields["outliers"] = ["fraction": .double(fraction)]
        case let .threshold(threshold)?: fields["outliers"] = ["threshold": .double(threshold)]
        case nil: break
        }
        return fields
    }

    static func rounded(_ value: Double, places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (value * scale).rounded() / scale
    }
}
