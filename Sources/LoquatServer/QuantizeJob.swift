import Checkpoints
import JSONRPC
import Quantization
import Synchronization
import Tensors

/// A failure of one layer, so that the error names it (`data.layer`).
struct LayerFailure: Error, CustomStringConvertible {
    let layer: String
    let underlying: Error
    var description: String { "layer \(layer): \(underlying)" }
}

/// Quantizes the assigned layers of a checkpoint, in parallel across layers, and measures each
/// one against its source (the ledger). Independent of the RPC layer: progress and
/// cancellation come in as closures, so tests can drive it directly.
struct QuantizeJob {
    let checkpoint: LoadedCheckpoint
    /// Layer name and spec, in checkpoint order.
    let assignments: [(name: String, spec: QuantizationSpec)]
    /// Per-layer calibration statistics by layer name (none until `calibrate` exists).
    var calibration: [String: LayerCalibration] = [:]

    /// Checks every layer's spec against its shape before any work, so that a group size that
    /// does not divide a row fails at once and names the layer.
    func validate() throws {
        for (name, spec) in assignments {
            guard let tensor = checkpoint.tensor(named: name), tensor.shape.count == 2 else {
                throw LayerFailure(layer: name, underlying: QuantizationError.unsupportedShape(layer: name, reason: "not a 2-D tensor"))
            }
            do {
                try spec.validate(columnCount: tensor.shape[1])
            } catch {
                throw LayerFailure(layer: name, underlying: error)
            }
        }
    }

    /// Runs every layer (`ParallelLayers.map`): decode the source tensor to Float32,
    /// `Quantizer.quantize`, dequantize, measure. `report(name, done, total)` is called from
    /// worker threads after each layer.
    func run(method: String, report: @Sendable (String, Int, Int) -> Void,
             isCancelled: @Sendable () -> Bool) throws -> [QuantizedLayer] {
        try ParallelLayers.map(names: assignments.map(\.name), checkpoint: checkpoint, method: method, report: report,
                               isCancelled: isCancelled) { index in try quantizeLayer(index) }
    }

    /// One layer, with every error wrapped to name it.
    func quantizeLayer(_ index: Int) throws -> QuantizedLayer {
        let (name, spec) = assignments[index]
        do {
            guard let tensor = checkpoint.tensor(named: name) else {
                throw QuantizationError.unsupportedShape(layer: name, reason: "no such tensor")
            }
            let original = try tensor.float32MatrixAnyDType()
            let weight = try Quantizer.quantize(original, name: name, spec: spec, calibration: calibration[name])
            let restored = weight.dequantized()
            guard restored.shape == original.shape else {
                throw QuantizationError.unsupportedShape(layer: name, reason: "dequantized to \(restored.shape), expected \(original.shape)")
            }
            let metrics = ErrorMetrics.weightError(original: original, approximation: restored)
            let outputError = calibration[name].flatMap {
                ErrorMetrics.outputRelativeError(original: original, approximation: restored, gram: $0.gram)
            }
            return QuantizedLayer(name: name, weight: weight, sourceDType: tensor.dtype,
                                  report: LayerReport(metrics, outputRelativeError: outputError))
        } catch let error as LayerFailure {
            throw error
        } catch {
            throw LayerFailure(layer: name, underlying: error)
        }
    }
}

/// Work over layers in parallel: `Parallel.workerCount` workers take layers largest first, each
/// taking the next one when done (sizes vary 10× between attention and MLP weights). The first
/// failure in layer order is thrown once the workers stop (a failure stops them early);
/// `isCancelled` is checked before each layer, and a cancelled run throws -32800.
enum ParallelLayers {
    static func map<Output: Sendable>(names: [String], checkpoint: LoadedCheckpoint, method: String,
                                      report: @Sendable (String, Int, Int) -> Void, isCancelled: @Sendable () -> Bool,
                                      _ body: (Int) throws -> Output) throws -> [Output] {
        let count = names.count
        let sizes = names.map { checkpoint.tensor(named: $0)?.elementCount ?? 0 }
        let schedule = names.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
        var slots = [Result<Output, Error>?](repeating: nil, count: count)
        let next = Atomic<Int>(0), done = Atomic<Int>(0), stop = Atomic<Bool>(false)
        slots.withUnsafeMutableBufferPointer { buffer in
            let output = UncheckedSendable(buffer)
            Parallel.forEach(min(Parallel.workerCount, count)) { _ in
                while !stop.load(ordering: .relaxed) {
                    let position = next.add(1, ordering: .relaxed).oldValue
                    guard position < count else { return }
                    if isCancelled() { stop.store(true, ordering: .relaxed); return }
                    let index = schedule[position]
                    let result = Result(catching: { try body(index) })
                    output.value[index] = result
                    if case .failure = result { stop.store(true, ordering: .relaxed); return }
                    report(names[index], done.add(1, ordering: .relaxed).newValue, count)
                }
            }
        }
        for slot in slots {
            if case let .failure(error)? = slot { throw error }
        }
        if isCancelled() || slots.contains(where: { $0 == nil }) { throw RPCError.cancelled(method) }
        return slots.map { try! $0!.get() }
    }
}
