import Checkpoints
import Synchronization
import Tensors

/// A model kept in memory between requests. Tensors are mmap-backed where the file allowed
/// it, so a resident model costs the pages that were touched.
///
/// A quantized model (`quantize`, or `model/load` of a `loquat` save) has `quantized` set; its
/// `checkpoint` is the source's (or the file's), whose tensors it shares for every layer it did
/// not quantize.
final class ResidentModel: Sendable {
    let handle: String
    let checkpoint: LoadedCheckpoint
    let quantized: QuantizedModel?
    /// Set on a model made by `merge into: "full"`: what `model/unmerge` subtracts again.
    let mergeRecord: MergeRecord?

    init(handle: String, checkpoint: LoadedCheckpoint, quantized: QuantizedModel? = nil, mergeRecord: MergeRecord? = nil) {
        self.handle = handle
        self.checkpoint = checkpoint
        self.quantized = quantized
        self.mergeRecord = mergeRecord
    }
}

/// The resident objects, by handle. A client may name an object; otherwise handles are
/// `model-1`, `model-2`, …. Objects are immutable once registered, so a failing request can
/// never leave one half-changed.
final class Workspace: Sendable {
    private struct State {
        var models: [String: ResidentModel] = [:]
        var order: [String] = []
        var nextSerial = 1
    }

    private let state = Mutex(State())

    /// Reserves a handle: the requested name (refused when taken) or the next serial one.
    func newHandle(requested: String?, prefix: String) throws -> String {
        try state.withLock { state in
            if let requested {
                guard state.models[requested] == nil else { throw WorkspaceError.handleTaken(requested) }
                return requested
            }
            while state.models["\(prefix)-\(state.nextSerial)"] != nil { state.nextSerial += 1 }
            defer { state.nextSerial += 1 }
            return "\(prefix)-\(state.nextSerial)"
        }
    }

    func register(_ model: ResidentModel) throws {
        try state.withLock { state in
            guard state.models[model.handle] == nil else { throw WorkspaceError.handleTaken(model.handle) }
            state.models[model.handle] = model
            state.order.append(model.handle)
        }
    }

    func model(_ handle: String) throws -> ResidentModel {
        guard let model = state.withLock({ $0.models[handle] }) else {
            throw WorkspaceError.unknownHandle(handle, known: state.withLock { $0.order })
        }
        return model
    }

    func allModels() -> [ResidentModel] {
        state.withLock { state in state.order.compactMap { state.models[$0] } }
    }

    /// Removes `handle`. A model that quantized models were made from stays until they are
    /// unloaded: their `source` would otherwise name nothing (or, later, another model).
    func remove(_ handle: String) throws {
        try state.withLock { state in
            guard state.models[handle] != nil else {
                throw WorkspaceError.unknownHandle(handle, known: state.order)
            }
            let dependents = state.order.filter { state.models[$0]?.quantized?.sourceHandle == handle }
            guard dependents.isEmpty else { throw WorkspaceError.inUse(handle, by: dependents) }
            state.models.removeValue(forKey: handle)
            state.order.removeAll { $0 == handle }
        }
    }
}

enum WorkspaceError: Error, CustomStringConvertible {
    case unknownHandle(String, known: [String])
    case handleTaken(String)
    /// Quantized models made from this one are still resident.
    case inUse(String, by: [String])

    var description: String {
        switch self {
        case let .unknownHandle(handle, known):
            return "no resident object named \"\(handle)\"" + (known.isEmpty ? " (nothing is loaded)" : "; loaded: \(known.joined(separator: ", "))")
        case let .handleTaken(handle):
            return "the name \"\(handle)\" is already in use; unload it first or pick another name"
        case let .inUse(handle, dependents):
            return "\"\(handle)\" is the source of the quantized model\(dependents.count == 1 ? "" : "s") "
                + dependents.joined(separator: ", ") + "; unload \(dependents.count == 1 ? "it" : "them") first"
        }
    }
}
