import LinearAlgebra
import Tensors

/// QuaRot-style randomized Hadamard incoherence processing of a layer's input dimension
/// (algorithms.md §10.1; QuaRot, arXiv 2404.00456, `fake_quant/hadamard_utils.py`; the random
/// signs as in QuIP#, arXiv 2402.04396): the orthogonal `R = H·D [in, in]` with `D = diag(±1)`
/// and `H` the normalized Walsh–Hadamard transform, block-diagonal over `blockSize`.
///
/// Weights `W [out, in]` become `W' = W·Rᵀ` (each row `w ↦ R·w`: signs, then the transform) and
/// inputs `x' = R·x`, so `W'·x' = W·x`; `W = W'·R` undoes it (each row: transform, then signs).
/// The same seed gives the same `D` for every layer of a width, as one `Q` serves QuaRot's whole
/// residual stream.
///
/// Widths that are not powers of two: `H` is block-diagonal, `blockSize` = the largest power of
/// two dividing the width (SmolLM2 576 = 9·64 → 64, 1536 → 512; MiniLM 384 → 128), applied by
/// the fast transform with no dense matrix. QuaRot instead builds a full-width Hadamard as the
/// Kronecker product of a stored order-12/20/28/36/… matrix with a power of two (576 = 36·16).
/// Consequence: our rotation mixes coordinates only within a block, so an outlier is spread over
/// `blockSize` coordinates (its magnitude falls by √blockSize, e.g. 8× for 64) instead of over the
/// whole row (24× for 576). With group-wise grids whose groups sit inside one block (`groupSize`
/// dividing `blockSize`, the default 64) that is all a group's scale can see anyway; per-channel
/// grids lose some of QuaRot's benefit on such widths. Measured with a full-width Paley
/// construction (numpy, int4 RTN, three SmolLM2 layers): per channel the full 576 = 36·16
/// rotation changed the error by −8% to +1% against 64-blocks, with groups of 64 by +0% to +2%;
/// on MiniLM (384 = 12·32 against 128-blocks) by under 2% either way. Not worth a stored-matrix
/// table here.
///
/// Signs: `SeededRandomGenerator(seed)`, one 64-bit draw per input column in order, sign = −1
/// when its top bit is set. Arithmetic in Float32 (the transform's rounding, ~log₂(blockSize)
/// ulps, is far below any grid's step); Gram matrices rotate in Float64.
public struct HadamardRotation: Sendable, Equatable {
    public let width: Int
    public let seed: UInt64
    public let blockSize: Int
    /// `diag(D)`, ±1 per input column.
    public let signs: [Float]

    public init(width: Int, seed: UInt64) {
        precondition(width > 0, "a rotation needs a positive width")
        self.width = width
        self.seed = seed
        self.blockSize = HadamardTransform.powerOfTwoBlockSize(forWidth: width)
        var generator = SeededRandomGenerator(seed: seed)
        self.signs = (0..<width).map { _ in generator.next() >> 63 == 1 ? -1 : 1 }
    }

    /// `W·Rᵀ`: every row mapped to `R·w`, rows in parallel.
    public func rotated(_ weight: Matrix<Float>) -> Matrix<Float> { apply(weight, inverse: false) }

    /// `W'·R`: every row mapped to `Rᵀ·w'`, undoing `rotated`.
    public func unrotated(_ weight: Matrix<Float>) -> Matrix<Float> { apply(weight, inverse: true) }

    private func apply(_ weight: Matrix<Float>, inverse: Bool) -> Matrix<Float> {
        precondition(weight.columnCount == width, "rotation of width \(width) applied to \(weight.columnCount) columns")
        var result = weight
        let width = self.width, blockSize = self.blockSize
        signs.withUnsafeBufferPointer { signs in
            result.values.withUnsafeMutableBufferPointer { values in
                guard let base = values.baseAddress else { return }
                Parallel.forEachChunk(weight.rowCount, minimumChunk: max(1, 16_384 / width)) { rows in
                    for row in rows {
                        let buffer = UnsafeMutableBufferPointer(start: base + row * width, count: width)
                        if !inverse { for c in 0..<width { buffer[c] *= signs[c] } }
                        HadamardTransform.transformBlocks(buffer, blockSize: blockSize)
                        if inverse { for c in 0..<width { buffer[c] *= signs[c] } }
                    }
                }
            }
        }
        return result
    }

    /// Scalar reference of `rotated`.
    public func rotatedReference(_ weight: Matrix<Float>) -> Matrix<Float> {
        var result = weight
        for row in 0..<weight.rowCount {
            var values = (0..<width).map { weight[row, $0] * signs[$0] }
            HadamardTransform.transformBlocksReference(&values, blockSize: blockSize)
            for c in 0..<width { result[row, c] = values[c] }
        }
        return result
    }

    /// Scalar reference of `unrotated`.
    public func unrotatedReference(_ weight: Matrix<Float>) -> Matrix<Float> {
        var result = weight
        for row in 0..<weight.rowCount {
            var values = Array(weight.row(row))
            HadamardTransform.transformBlocksReference(&values, blockSize: blockSize)
            for c in 0..<width { result[row, c] = values[c] * signs[c] }
        }
        return result
    }

    /// The Gram matrix of the rotated inputs, `Σ x'x'ᵀ = R·G·Rᵀ` for `G = Σ x xᵀ [in, in]`, in
    /// Float64: rotate the rows of `G` (giving `G·Rᵀ`), then the rows of its transpose `R·G`.
    public func rotatedGram(_ gram: Matrix<Double>) -> Matrix<Double> {
        precondition(gram.rowCount == width && gram.columnCount == width, "Gram matrix is not \(width)×\(width)")
        return rotateRowsInFloat64(rotateRowsInFloat64(gram).transposed)
    }

    /// Calibration statistics of the rotated inputs: the rotated Gram matrix and the exact
    /// per-channel RMS `√(G'ⱼⱼ/tokenCount)`. Mean |x'ⱼ| cannot be rebuilt from second moments;
    /// it is set to `RMS·√(2/π)`, its value for the near-Gaussian coordinates a random rotation
    /// produces.
    public func rotatedCalibration(_ calibration: LayerCalibration) -> LayerCalibration {
        let gram = rotatedGram(calibration.gram)
        let tokens = Double(max(1, calibration.tokenCount))
        let rootMeanSquare = (0..<width).map { (max(0, gram[$0, $0]) / tokens).squareRoot() }
        let gaussianMeanAbsoluteRatio = (2 / Double.pi).squareRoot()
        return LayerCalibration(gram: gram, tokenCount: calibration.tokenCount,
                                meanAbsolute: rootMeanSquare.map { $0 * gaussianMeanAbsoluteRatio },
                                rootMeanSquare: rootMeanSquare)
    }

    private func rotateRowsInFloat64(_ matrix: Matrix<Double>) -> Matrix<Double> {
        var result = matrix
        let signs = self.signs.map(Double.init)
        for row in 0..<matrix.rowCount {
            var values = (0..<width).map { matrix[row, $0] * signs[$0] }
            HadamardTransform.transformBlocksReference(&values, blockSize: blockSize)
            for c in 0..<width { result[row, c] = values[c] }
        }
        return result
    }
}
