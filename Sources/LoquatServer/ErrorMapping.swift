import Adapters
import Checkpoints
import JSON
import JSONRPC
import LinearAlgebra
import LoquatSupport
import Models
import Quantization
import Tensors

/// The one table from domain errors to JSON-RPC errors. `data.reason` always carries the full
/// description; `data.file` / `data.handle` name the object when there is one.
enum ErrorMapping {
    static func rpcError(_ error: Error) -> RPCError {
        switch error {
        case let error as RPCError:
            return error
        case let error as WorkspaceError:
            switch error {
            case let .unknownHandle(handle, _):
                return RPCError(code: RPCError.Code.notFound, message: "Not found: \(error)",
                                data: ["handle": .string(handle), "reason": .string(error.description)])
            case let .handleTaken(name):
                return RPCError(code: RPCError.Code.invalidParams, message: "Invalid params: name: \(error)",
                                data: ["param": "name", "value": .string(name), "reason": .string(error.description)])
            case let .inUse(_, dependents):
                return RPCError(code: RPCError.Code.invalidParams, message: "Invalid params: model: \(error)",
                                data: ["param": "model", "dependents": .strings(dependents), "reason": .string(error.description)])
            }
        case let error as QuantizationError:
            return quantizationError(error, layer: nil)
        case let error as AdapterError:
            return RPCError(code: RPCError.Code.invalidParams, message: "Invalid params: \(error)",
                            data: ["param": .string(error.parameter), "reason": .string(error.description)])
        case let error as LayerFailure:
            if let underlying = error.underlying as? QuantizationError { return quantizationError(underlying, layer: error.layer) }
            var mapped = rpcError(error.underlying)
            if case var .object(data)? = mapped.data {
                data["layer"] = .string(error.layer)
                mapped = RPCError(code: mapped.code, message: "\(mapped.message) (layer \(error.layer))", data: .object(data))
            }
            return mapped
        case let error as QuantizedSaveError:
            var data: JSONObject = ["reason": .string(error.description), "format": .string(error.format)]
            if let layer = error.layer { data["layer"] = .string(layer) }
            if let param = error.param { data["param"] = .string(param) }
            return RPCError(code: error.code, message: "\(error.code == RPCError.Code.invalidParams ? "Invalid params" : "Unsupported"): \(error)",
                            data: .object(data))
        case let error as LoquatFormatError:
            // A family this build cannot write or read is unsupported; a damaged record is I/O.
            if case .malformed = error { return make(RPCError.Code.ioError, "Invalid loquat checkpoint", error, file: nil) }
            return make(RPCError.Code.unsupported, "Unsupported", error, file: nil)
        case let error as CheckpointError:
            switch error {
            case .notFound:
                return make(RPCError.Code.notFound, "Not found", error, file: error.path)
            case .pickleRefused, .unsupported:
                return make(RPCError.Code.unsupported, "Unsupported", error, file: error.path)
            case .unrecognized:
                return make(RPCError.Code.unsupported, "Unsupported", error, file: error.path)
            }
        case let error as MappedFile.OpenError:
            return make(error.isMissing ? RPCError.Code.notFound : RPCError.Code.ioError,
                        error.isMissing ? "Not found" : "I/O error", error, file: error.path)
        case let error as AtomicFileWriter.WriteError:
            return make(RPCError.Code.ioError, "I/O error", error, file: error.path)
        case let error as SafetensorsError:
            if case .unsupportedDType = error {
                return make(RPCError.Code.unsupported, "Unsupported", error, file: error.path)
            }
            return make(RPCError.Code.ioError, "Invalid safetensors file", error, file: error.path)
        case let error as PerplexityError:
            let param: String
            switch error {
            case .invalidContextLength: param = "contextLength"
            case .textTooShort: param = "text"
            }
            return RPCError(code: RPCError.Code.invalidParams, message: "Invalid params: \(param): \(error)",
                            data: ["param": .string(param), "reason": .string(error.description)])
        case let error as TokenizerMetadataError:
            return error.kind == .unsupported
                ? make(RPCError.Code.unsupported, "Unsupported", error, file: error.path)
                : make(RPCError.Code.ioError, "Invalid tokenizer file", error, file: error.path)
        case let error as GGUFError:
            return make(RPCError.Code.ioError, "Invalid GGUF file", error, file: error.path)
        case let error as ModelConfigError:
            return make(RPCError.Code.ioError, "Invalid config.json", error, file: error.path)
        case let error as TensorError:
            switch error {
            case .shapeMismatch, .notAMatrix, .byteCountMismatch:
                return make(RPCError.Code.shapeMismatch, "Shape mismatch", error, file: nil)
            case .unsupportedDType, .notWholeBlocks:
                return make(RPCError.Code.unsupported, "Unsupported", error, file: nil)
            }
        case let error as LinearAlgebraError:
            return make(RPCError.Code.internalError, "Numerical failure", error, file: nil)
        case let error as SaveError:
            var mapped = make(error.code, error.title, error, file: error.path)
            if error.code == RPCError.Code.invalidParams, case var .object(data)? = mapped.data {
                data["param"] = "path"
                mapped = RPCError(code: mapped.code, message: mapped.message, data: .object(data))
            }
            return mapped
        default:
            return make(RPCError.Code.internalError, "Internal error", error, file: nil)
        }
    }

    /// -32602 naming the parameter to fix (`QuantizationError.parameter`) and, where there is
    /// one, the layer (and for a non-finite weight its row and column).
    private static func quantizationError(_ error: QuantizationError, layer: String?) -> RPCError {
        let param = error.parameter ?? "params"
        var reason = error.description
        if case let .invalidParameter(_, text) = error { reason = text }
        if let layer, !reason.contains(layer) { reason += " (layer \(layer))" }
        var data: JSONObject = ["param": .string(param), "reason": .string(reason)]
        switch error {
        case let .nonFiniteWeight(name, row, column):
            data["layer"] = .string(name)
            data["row"] = .int(row)
            data["column"] = .int(column)
        case let .unsupportedShape(name, _):
            data["layer"] = .string(name)
        default:
            if let layer { data["layer"] = .string(layer) }
        }
        return RPCError(code: RPCError.Code.invalidParams, message: "Invalid params: \(param): \(reason)", data: .object(data))
    }

    private static func make(_ code: Int, _ title: String, _ error: Error, file: String?) -> RPCError {
        var data: JSONObject = ["reason": .string("\(error)")]
        if let file { data["file"] = .string(file) }
        return RPCError(code: code, message: "\(title): \(error)", data: .object(data))
    }
}
