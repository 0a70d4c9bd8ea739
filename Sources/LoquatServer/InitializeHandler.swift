import Adapters
import Checkpoints
import JSON
import JSONRPC
import Models
import Quantization
import Synchronization

extension LoquatServer {
    /// `initialize {processId?, clientInfo?, capabilities?, …}` → `{capabilities, serverInfo}`.
    /// LSP-style params are accepted and ignored except `processId`: when that process exits,
    /// so does the daemon.
    func initialize(_ call: IncomingCall) throws -> JSONValue {
        guard initializeCount.add(1, ordering: .relaxed).oldValue == 0 else {
            throw RPCError.invalidRequest("initialize was already received; it may be sent once per session")
        }
        if case let .object(params)? = call.params, let processID = params["processId"], processID != .null {
            guard let pid = processID.intValue else {
                throw RPCError.invalidParams("processId", "must be an integer or null, got \(processID.typeName)")
            }
            ParentWatcher.exitWhenGone(processID: pid)
        }
        let capabilities: JSONObject = [
            "methods": .strings(Self.methodNames),
            "quantizers": .strings(QuantizationModule.methods),
            "initMethods": .strings(AdaptersModule.initMethods),
            "forwardArchitectures": .strings(ModelsModule.forwardArchitectures),
            "formats": [
                "read": ["safetensors", "safetensors-sharded", "gguf", "loquat"],
                "write": ["safetensors", "gguf", "bnb", "loquat"],
                "ggufTypesRead": .strings(["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]),
                "ggufTypesWrite": .strings(GGUFWriter.weightTypes.map(\.rawValue)),
                "safetensorsDTypesWrite": .strings(["F32", "F16", "BF16"]),
                // A quantized model's GGUF export re-encodes its dequantized weights as any type the writer encodes.
                "quantizedGGUFTypesWrite": .strings(GGUFWriter.weightTypes.map(\.rawValue)),
                "loquatFamilies": .strings(LoquatFormat.families),
            ],
            "framing": ["contentLength", "newlineDelimited"],
            "progress": true,
            "cancellation": true,
            "batches": true,
        ]
        let versions: JSONObject = [
            "loquat": .string(Self.version),
            "jsonrpc": "2.0",
            "protocol": "1",
            "jansson": .string(JSON.libraryVersion),
            "ggufRead": [2, 3],
            "ggufWrite": 3,
        ]
        let runtime: JSONObject = [
            "blasCore": .string(environment.blasCore),
            "blasThreads": .int(environment.blasThreadCount),
            "blasCoreSource": .string(environment.blasCoreTypeSource),
            "workers": .int(environment.workerCount),
        ]
        return [
            "capabilities": .object(capabilities),
            "serverInfo": ["name": "loquatd", "version": .string(Self.version)],
            "versions": .object(versions),
            "runtime": .object(runtime),
        ]
    }
}
