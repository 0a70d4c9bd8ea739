import Adapters
import JSON
import JSONRPC
import Synchronization

/// A resident adapter: the LoRA factors and config, the model it was made for (the quantized or
/// full-precision handle it sits on) and the full-precision base it compensates.
final class ResidentAdapter: Sendable {
    let handle: String
    let adapter: LoRAAdapter
    /// The model the adapter applies to (for PiSSA/LoftQ/LQ-LoRA the new base initAdapter made).
    let modelHandle: String?
    /// The full-precision model whose weights the adapter approximates.
    let baseHandle: String?
    /// The request that made it (provenance), or the file it was read from.
    let origin: JSONValue

    init(handle: String, adapter: LoRAAdapter, modelHandle: String?, baseHandle: String?, origin: JSONValue) {
        self.handle = handle
        self.adapter = adapter
        self.modelHandle = modelHandle
        self.baseHandle = baseHandle
        self.origin = origin
    }

    var parameterCount: Int {
        adapter.layers.reduce(0) { $0 + $1.loraA.values.count + $1.loraB.values.count + ($1.magnitude?.count ?? 0) }
    }

    /// `adapter/list` and `initAdapter`'s summary.
    var summary: JSONValue {
        var object: JSONObject = [
            "adapter": .string(handle),
            "model": modelHandle.map(JSONValue.string) ?? .null,
            "base": baseHandle.map(JSONValue.string) ?? .null,
            "method": .string(adapter.initMethod),
            "rank": .int(adapter.rank),
            "alpha": .double(adapter.alpha),
            "useRSLoRA": .bool(adapter.useRSLoRA),
            "useDoRA": .bool(adapter.useDoRA),
            "layerCount": .int(adapter.layers.count),
            "parameterCount": .int(parameterCount),
            "targetModules": .strings(adapter.targetModules),
        ]
        if !adapter.rankPattern.isEmpty {
            object["rankPattern"] = .object(JSONObject(adapter.rankPattern.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.int($0.value)) }))
        }
        if !adapter.alphaPattern.isEmpty {
            object["alphaPattern"] = .object(JSONObject(adapter.alphaPattern.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.double($0.value)) }))
        }
        return .object(object)
    }
}

/// The resident adapters, by handle (`adapter-1`, … unless named).
final class AdapterStore: Sendable {
    private struct State {
        var adapters: [String: ResidentAdapter] = [:]
        var order: [String] = []
        var serial = 1
    }

    private let state = Mutex(State())

    func newHandle(requested: String?) throws -> String {
        try state.withLock { state in
            if let requested {
                guard state.adapters[requested] == nil else { throw WorkspaceError.handleTaken(requested) }
                return requested
            }
            while state.adapters["adapter-\(state.serial)"] != nil { state.serial += 1 }
            defer { state.serial += 1 }
            return "adapter-\(state.serial)"
        }
    }

    func register(_ adapter: ResidentAdapter) throws {
        try state.withLock { state in
            guard state.adapters[adapter.handle] == nil else { throw WorkspaceError.handleTaken(adapter.handle) }
            state.adapters[adapter.handle] = adapter
            state.order.append(adapter.handle)
        }
    }

    func adapter(_ handle: String) throws -> ResidentAdapter {
        try state.withLock { state in
            guard let adapter = state.adapters[handle] else {
                throw RPCError(code: RPCError.Code.notFound, message: "Not found: no adapter named \"\(handle)\"",
                               data: ["param": "adapter", "handle": .string(handle),
                                      "reason": .string("no adapter named \"\(handle)\"" + (state.order.isEmpty ? "; make one with initAdapter or adapter/load" : "; loaded: " + state.order.joined(separator: ", ")))])
            }
            return adapter
        }
    }

    func all() -> [ResidentAdapter] { state.withLock { state in state.order.compactMap { state.adapters[$0] } } }

    func remove(_ handle: String) throws {
        _ = try adapter(handle)
        state.withLock { state in
            state.adapters.removeValue(forKey: handle)
            state.order.removeAll { $0 == handle }
        }
    }

    /// Adapters that name `modelHandle` as their model or base.
    func dependents(of modelHandle: String) -> [String] {
        all().filter { $0.modelHandle == modelHandle || $0.baseHandle == modelHandle }.map(\.handle)
    }
}
