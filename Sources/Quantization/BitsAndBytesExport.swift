import Tensors

/// The bitsandbytes 4-bit checkpoint layout that transformers writes and loads (formats.md §4.1;
/// bnb `Linear4bit._save_to_state_dict` + `QuantState.as_dict(packed=True)`), for one Linear
/// whose state-dict prefix is `prefix` (e.g. `model.layers.0.self_attn.q_proj`):
///
/// | tensor | dtype, shape |
/// | --- | --- |
/// | `<prefix>.weight` | U8 `[(n+1)/2, 1]`, packed codes |
/// | `<prefix>.weight.absmax` | F32 `[blocks]`, or U8 `[blocks]` (qabsmax) with double quantization |
/// | `<prefix>.weight.quant_map` | F32 `[16]` |
/// | `<prefix>.weight.nested_absmax` | F32 `[⌈blocks/256⌉]` (double quantization) |
/// | `<prefix>.weight.nested_quant_map` | F32 `[256]` (double quantization) |
/// | `<prefix>.weight.quant_state.bitsandbytes__nf4` (or `__fp4`) | U8 `[bytes]`, UTF-8 JSON |
///
/// The JSON blob is `BitsAndBytesQuantState.json`. `BitsAndBytesImport` reads the layout back.
public enum BitsAndBytesExport {
    /// torch dtype names bnb accepts for the original weight (`QuantState.dtype`).
    public static let originalDTypes: Set<String> = ["float32", "float16", "bfloat16"]

    /// The tensors of one quantized Linear, in the order bnb's state dict lists them.
    /// `originalDType` is the torch name of the dtype the weight had before quantization.
    public static func tensors(for weight: any QuantizedWeight, prefix: String, originalDType: String = "float32") throws -> [Tensor] {
        let weight = try bitsAndBytesWeight(weight)
        guard originalDTypes.contains(originalDType) else {
            throw QuantizationError.invalidParameter("dtype", "bitsandbytes records float32, float16 or bfloat16 as the original dtype, got \(originalDType)")
        }
        let key = prefix.isEmpty ? "weight" : prefix + ".weight"
        var tensors = [try Tensor(name: key, dtype: .u8, shape: [weight.packedCodes.count, 1],
                                  storage: .bytes(weight.packedCodes))]
        switch weight.absmax {
        case let .float32(absmax):
            tensors.append(Tensor(name: key + ".absmax", shape: [absmax.count], float32: absmax))
            tensors.append(Tensor(name: key + ".quant_map", shape: [16], float32: weight.quantMap))
        case let .doubleQuantized(nested):
            tensors.append(try Tensor(name: key + ".absmax", dtype: .u8, shape: [nested.quantizedAbsmax.count],
                                      storage: .bytes(nested.quantizedAbsmax)))
            tensors.append(Tensor(name: key + ".quant_map", shape: [16], float32: weight.quantMap))
            tensors.append(Tensor(name: key + ".nested_absmax", shape: [nested.nestedAbsmax.count], float32: nested.nestedAbsmax))
            tensors.append(Tensor(name: key + ".nested_quant_map", shape: [256], float32: nested.nestedQuantMap))
        }
        let state = Array(quantState(for: weight, originalDType: originalDType).json.utf8)
        tensors.append(try Tensor(name: key + ".quant_state.bitsandbytes__" + weight.quantType.rawValue, dtype: .u8,
                                  shape: [state.count], storage: .bytes(state)))
        return tensors
    }

    /// The quant state bnb records for `weight` (its JSON is what `tensors(for:)` stores).
    public static func quantState(for weight: BitsAndBytesFourBitWeight, originalDType: String = "float32") -> BitsAndBytesQuantState {
        var state = BitsAndBytesQuantState(quantType: weight.quantType, blockSize: weight.blockSize, dtype: originalDType,
                                           shape: [weight.rowCount, weight.columnCount])
        if case let .doubleQuantized(nested) = weight.absmax {
            state.nestedBlockSize = nested.nestedBlockSize
            state.nestedDType = "float32"
            state.nestedOffset = nested.offset
        }
        return state
    }

    /// The `quantization_config` of a checkpoint holding `weights`: one quant type and one
    /// double-quantization setting, as transformers requires. `skipModules` lists Linear modules
    /// left unquantized (transformers' `llm_int8_skip_modules`), nil when there are none.
    public static func config(for weights: [any QuantizedWeight], computeDType: String = "float32",
                              skipModules: [String]? = nil) throws -> BitsAndBytesConfig {
        let concrete = try weights.map(bitsAndBytesWeight)
        guard let first = concrete.first else {
            throw QuantizationError.invalidParameter("format", "a bnb checkpoint needs at least one nf4/fp4 layer")
        }
        if let other = concrete.first(where: { $0.quantType != first.quantType || $0.isDoubleQuantized != first.isDoubleQuantized }) {
            throw QuantizationError.invalidParameter("format", "a bnb checkpoint has one bnb_4bit_quant_type and one bnb_4bit_use_double_quant; found \(first.quantType.rawValue) doubleQuant \(first.isDoubleQuantized) and \(other.quantType.rawValue) doubleQuant \(other.isDoubleQuantized)")
        }
        guard originalDTypes.contains(computeDType) else {
            throw QuantizationError.invalidParameter("computeDType", "bnb_4bit_compute_dtype is float32, float16 or bfloat16, got \(computeDType)")
        }
        return BitsAndBytesConfig(quantType: first.quantType, useDoubleQuant: first.isDoubleQuantized,
                                  computeDType: computeDType, skipModules: skipModules)
    }

    static func bitsAndBytesWeight(_ weight: any QuantizedWeight) throws -> BitsAndBytesFourBitWeight {
        guard let weight = weight as? BitsAndBytesFourBitWeight else {
            throw QuantizationError.invalidParameter("format", "bitsandbytes stores nf4 and fp4 only; a \(weight.spec.method.rawValue) weight cannot be written in its layout")
        }
        return weight
    }
}

/// transformers' `BitsAndBytesConfig.to_dict()` for a 4-bit checkpoint, as config.json's
/// `quantization_config`. `entries` lists the keys sorted, as transformers serializes them
/// (`json.dumps(..., sort_keys=True)`); the server turns it into JSON.
public struct BitsAndBytesConfig: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case bool(Bool)
        case string(String)
        case number(Double)
        case strings([String])
        case null
    }

    public var quantType: BitsAndBytesQuantType
    public var useDoubleQuant: Bool
    /// `bnb_4bit_compute_dtype`: the dtype the layers compute in (transformers' default float32).
    public var computeDType: String
    /// `llm_int8_skip_modules`: Linear modules kept in full precision.
    public var skipModules: [String]?

    public init(quantType: BitsAndBytesQuantType, useDoubleQuant: Bool, computeDType: String = "float32",
                skipModules: [String]? = nil) {
        self.quantType = quantType
        self.useDoubleQuant = useDoubleQuant
        self.computeDType = computeDType
        self.skipModules = skipModules
    }

    public var entries: [(key: String, value: Value)] {
        [("_load_in_4bit", .bool(true)), ("_load_in_8bit", .bool(false)),
         ("bnb_4bit_compute_dtype", .string(computeDType)), ("bnb_4bit_quant_storage", .string("uint8")),
         ("bnb_4bit_quant_type", .string(quantType.rawValue)), ("bnb_4bit_use_double_quant", .bool(useDoubleQuant)),
         ("llm_int8_enable_fp32_cpu_offload", .bool(false)), ("llm_int8_has_fp16_weight", .bool(false)),
         ("llm_int8_skip_modules", skipModules.map { .strings($0) } ?? .null), ("llm_int8_threshold", .number(6.0)),
         ("load_in_4bit", .bool(true)), ("load_in_8bit", .bool(false)), ("quant_method", .string("bitsandbytes"))]
    }
}
