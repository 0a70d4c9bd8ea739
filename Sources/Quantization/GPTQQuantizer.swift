import LinearAlgebra
import Tensors

/// GPTQ / OPTQ (Frantar et al., arXiv 2210.17323; IST-DASLab/gptq `gptq.py` `GPTQ.fasterquant`;
/// algorithms.md §9.1): minimise `‖X(W − Q)ᵀ‖²_F = Σ_rows (w − q) H (w − q)ᵀ` with `H = XᵀX`,
/// quantizing the input columns one at a time and spreading each column's rounding error over
/// the columns not yet quantized (the OBS update).
///
/// Steps (shapes: `W [out, in]`, `H [in, in]` Float64 from `LayerCalibration.gram`):
/// 1. per-channel (`groupSize` 0): each row's grid parameters are fitted on the original `W`;
/// 2. dead inputs (`H_jj = 0`) get `H_jj = 1` and `W[:, j] = 0`;
/// 3. act-order: columns sorted by `diag H`, descending (ties by index), `W` and `H` permuted;
/// 4. `H + λ·mean(diag H)·I` (λ = `dampening`, ×10 up to 4 times while Cholesky fails),
///    `U` = upper Cholesky factor of its inverse (`H⁻¹ = UᵀU`), all in Float64 through LAPACK;
/// 5. `GPTQBlockSolver`: blocks of `blockSize` columns; a group's parameters are fitted when its
///    first column comes up; `q = quantdequant(w)`, `e = (w − q)/U_cc`, the rest of the block gets
///    `−e ⊗ U[c, c+1..]`, and after the block the later columns get `−Err · U[block, later]` (GEMM).
///
/// Grid: `gptq.grid` `.int` (min-max asymmetric or symmetric per `symmetric`, optional
/// `clipSearch`; `IntegerGrid`) or `.nf` (`NormalFloatGrid`). One deliberate difference from the
/// reference: a group fitted inside a block sees that block's updated columns (the reference
/// fits on the global `W`, which lacks them; algorithms.md §9.1(e) calls ours the cleaner choice).
/// With act-order the groups are consecutive in the permuted order, so `g_idx` is stored.
public enum GPTQQuantizer {
    public static let isImplemented = true

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec, calibration: LayerCalibration) throws -> any QuantizedWeight {
        try quantizeGrid(weight, spec: spec, calibration: calibration)
    }

    public static func quantizeGrid(_ weight: Matrix<Float>, spec: QuantizationSpec,
                                    calibration: LayerCalibration) throws -> GroupedGridWeight {
        let problem = try GPTQProblem(weight, spec: spec, hessian: calibration.gram)
        return problem.assemble(try GPTQBlockSolver.solve(problem))
    }

    /// Scalar reference of the whole algorithm (same steps, plain loops instead of SIMD and GEMM).
    public static func quantizeGridReference(_ weight: Matrix<Float>, spec: QuantizationSpec,
                                             calibration: LayerCalibration) throws -> GroupedGridWeight {
        let problem = try GPTQProblem(weight, spec: spec, hessian: calibration.gram)
        return problem.assemble(GPTQBlockSolver.solveReference(problem))
    }

    /// The grid GPTQ rounds to.
    public static func rule(_ spec: QuantizationSpec) throws -> GridRule {
        switch spec.gptq.grid {
        case .int:
            return GridRule(kind: .integer(symmetric: spec.symmetric), bits: spec.bits, clipSearch: spec.clipSearch)
        case .nf:
            guard [2, 3, 4, 8].contains(spec.bits) else {
                throw QuantizationError.invalidParameter("bits", "gptq on the nf grid takes bits 2, 3, 4 or 8, got \(spec.bits)")
            }
            return GridRule(kind: .normalFloat, bits: spec.bits)
        default:
            throw QuantizationError.invalidParameter("gptq.grid", "gptq rounds to the int or nf grid, got \(spec.gptq.grid.rawValue)")
        }
    }
}

/// Everything the column loop needs, prepared once: the permuted weight, `U`, the grid.
struct GPTQProblem {
    let spec: QuantizationSpec
    let rule: GridRule
    let rowCount: Int
    let columnCount: Int
    let groupSize: Int
    let blockSize: Int
    /// `W` with dead columns zeroed, columns in processing order.
    let weight: Matrix<Float>
    /// Upper Cholesky factor of `(H_perm + δI)⁻¹`, Float32 `[in, in]`.
    let upper: Matrix<Float>
    /// Processing position → original column (act-order), nil when in order.
    let permutation: [Int]?
    /// Per-channel parameters fitted on the original rows (groupSize 0), nil otherwise.
    let channelParameters: [GroupParameters]?

    init(_ original: Matrix<Float>, spec: QuantizationSpec, hessian: Matrix<Double>) throws {
        try GroupedGridQuantizer.validate(original, spec: spec, method: .gptq)
        let (rows, columns) = (original.rowCount, original.columnCount)
        guard hessian.rowCount == columns, hessian.columnCount == columns else {
            throw QuantizationError.invalidParameter("calibration", "the Hessian is \(hessian.rowCount)×\(hessian.columnCount), the layer has \(columns) inputs")
        }
        guard hessian.values.allSatisfy({ $0.isFinite }) else {
            throw QuantizationError.invalidParameter("calibration", "the Hessian has a non-finite entry")
        }
        guard spec.gptq.blockSize > 0, spec.gptq.dampening >= 0, spec.gptq.dampening.isFinite else {
            throw QuantizationError.invalidParameter("gptq", "blockSize must be positive and dampening finite and ≥ 0")
        }
        self.spec = spec
        let gridRule = try GPTQQuantizer.rule(spec)
        rule = gridRule
        rowCount = rows
        columnCount = columns
        groupSize = GroupedGridQuantizer.groupSize(spec, columnCount: columns)
        blockSize = spec.gptq.blockSize

        var w = original
        channelParameters = spec.groupSize == 0 ? (0..<rows).map { row in
            w.values.withUnsafeBufferPointer { gridRule.fit(UnsafeBufferPointer(rebasing: $0[(row * columns)..<((row + 1) * columns)])) }
        } : nil
        var h = hessian
        for j in 0..<columns where h[j, j] == 0 {
            h[j, j] = 1
            for row in 0..<rows { w[row, j] = 0 }
        }
        if spec.gptq.actOrder {
            let order = (0..<columns).sorted { h[$0, $0] != h[$1, $1] ? h[$0, $0] > h[$1, $1] : $0 < $1 }
            var permutedW = Matrix<Float>(zeros: rows, columns)
            var permutedH = Matrix<Double>(zeros: columns, columns)
            for row in 0..<rows { for p in 0..<columns { permutedW[row, p] = w[row, order[p]] } }
            for i in 0..<columns { for j in 0..<columns { permutedH[i, j] = h[order[i], order[j]] } }
            (w, h, permutation) = (permutedW, permutedH, order)
        } else {
            permutation = nil
        }
        weight = w
        upper = try GPTQProblem.inverseCholeskyUpper(h, dampening: spec.gptq.dampening)
    }

    /// `U` with `(H + δI)⁻¹ = UᵀU`: Cholesky of the damped `H`, its inverse (`potri`), and the
    /// Cholesky of that inverse, read as its upper factor — GPTQ's three `torch.linalg` calls.
    static func inverseCholeskyUpper(_ h: Matrix<Double>, dampening: Double) throws -> Matrix<Float> {
        do {
            let factor = try LinearAlgebra.cholesky(h, damping: .growing(from: dampening, factor: 10, attempts: 5))
            let inverse = try factor.inverse()
            let inverseFactor = try LinearAlgebra.cholesky(inverse, damping: CholeskyDamping(relativeValues: [0, 1e-12, 1e-9, 1e-6]))
            let lower = inverseFactor.lower
            let n = h.rowCount
            var upper = Matrix<Float>(zeros: n, n)
            for i in 0..<n { for j in i..<n { upper[i, j] = Float(lower[j, i]) } }
            return upper
        } catch let error as LinearAlgebraError {
            throw QuantizationError.invalidParameter("calibration", "the damped Hessian is not positive definite (\(error)); raise gptq.dampening")
        }
    }

    /// Groups per row.
    var groupCount: Int { columnCount / groupSize }

    /// The stored form from the solver's output (codes and parameters in processing order).
    func assemble(_ result: GPTQSolution) -> GroupedGridWeight {
        var codes = result.codes
        var groupIndex: [Int32]? = nil
        if let permutation {
            codes = [UInt8](repeating: 0, count: rowCount * columnCount)
            for row in 0..<rowCount {
                for p in 0..<columnCount { codes[row * columnCount + permutation[p]] = result.codes[row * columnCount + p] }
            }
            if groupCount > 1 {
                var index = [Int32](repeating: 0, count: columnCount)
                for p in 0..<columnCount { index[permutation[p]] = Int32(p / groupSize) }
                groupIndex = index
            }
        }
        return GroupedGridWeight(rowCount: rowCount, columnCount: columnCount, spec: spec, bits: rule.bits,
                                 groupSize: groupSize, codes: codes, scales: result.parameters.map(\.scale),
                                 zeroPoints: rule.zeroPoints(result.parameters.map(\.zeroPoint)),
                                 levels: rule.gridLevels, groupIndex: groupIndex, scaleBitCount: rule.scaleBitCount)
    }
}

/// The column loop's output: codes `[rows, in]` and parameters `[rows, groupCount]`, both in
/// processing (permuted) order.
struct GPTQSolution {
    var codes: [UInt8]
    var parameters: [GroupParameters]
}
