import JSON
import JSONRPC
import Synchronization

/// The daemon's method table. Each method has its own handler file; this type only routes
/// and maps errors (ErrorMapping) so that every failure leaves as a JSON-RPC error with data.
public final class LoquatServer: RPCMethodHandler {
    public static let version = "0.1.0"
    let workspace = Workspace()
    let initializeCount = Atomic<Int>(0)
    let forwardModels = ForwardModelCache()
    let calibrations = CalibrationStore()
    let adapters = AdapterStore()
    let environment: ServerEnvironment

    public init(environment: ServerEnvironment) {
        self.environment = environment
    }

    /// Method name → handler. `shutdown`, `exit` and `$/cancelRequest` are handled by the
    /// connection itself.
    private var routes: [String: (IncomingCall, RequestContext) throws -> JSONValue] {
        [
            "initialize": { call, _ in try self.initialize(call) },
            "initialized": { _, _ in .null },
            "model/load": { call, context in try self.loadModel(call, context) },
            "model/info": { call, _ in try self.modelInfo(call) },
            "model/list": { call, _ in try self.listModels(call) },
            "model/unload": { call, _ in try self.unloadModel(call) },
            "model/save": { call, context in try self.saveModel(call, context) },
            "quantize": { call, context in try self.quantize(call, context) },
            "quantize/plan": { call, context in try self.quantizePlan(call, context) },
            "evaluate": { call, context in try self.evaluate(call, context) },
            "calibrate": { call, context in try self.calibrate(call, context) },
            "initAdapter": { call, context in try self.initAdapter(call, context) },
            "adapter/save": { call, context in try self.saveAdapter(call, context) },
            "adapter/load": { call, _ in try self.loadAdapter(call) },
            "adapter/list": { call, _ in try self.listAdapters(call) },
            "adapter/unload": { call, _ in try self.unloadAdapter(call) },
            "merge": { call, context in try self.merge(call, context) },
            "model/unmerge": { call, _ in try self.unmergeModel(call) },
            "extractAdapter": { call, context in try self.extractAdapter(call, context) },
        ]
    }

    /// Every method a client may call, for `initialize`.
    static let methodNames = ["initialize", "initialized", "shutdown", "exit", "$/cancelRequest",
                              "model/load", "model/info", "model/list", "model/unload", "model/save",
                              "quantize", "quantize/plan", "evaluate", "calibrate",
                              "initAdapter", "adapter/save", "adapter/load", "adapter/list", "adapter/unload",
                              "merge", "model/unmerge", "extractAdapter"]

    public func handle(_ call: IncomingCall, context: RequestContext) throws -> JSONValue {
        guard let route = routes[call.method] else { throw RPCError.methodNotFound(call.method) }
        do {
            return try route(call, context)
        } catch {
            throw ErrorMapping.rpcError(error)
        }
    }
}

/// Facts about the process that `initialize` reports: the BLAS core and threads.
public struct ServerEnvironment: Sendable {
    public var blasCore: String
    public var blasThreadCount: Int
    public var blasCoreTypeSource: String
    public var workerCount: Int

    public init(blasCore: String, blasThreadCount: Int, blasCoreTypeSource: String, workerCount: Int) {
        self.blasCore = blasCore
        self.blasThreadCount = blasThreadCount
        self.blasCoreTypeSource = blasCoreTypeSource
        self.workerCount = workerCount
    }
}
