/// A dense row-major matrix: element `(row, column)` is at `row · columnCount + column`.
/// Weights are `[out, in]` (PyTorch order). Value semantics with copy-on-write storage.
public struct Matrix<Scalar: BinaryFloatingPoint & Sendable>: Sendable, Equatable {
    public let rowCount: Int
    public let columnCount: Int
    public var values: [Scalar]

    public init(rowCount: Int, columnCount: Int, values: [Scalar]) {
        precondition(rowCount >= 0 && columnCount >= 0 && values.count == rowCount * columnCount,
                     "\(values.count) values do not fill \(rowCount)×\(columnCount)")
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.values = values
    }

    public init(zeros rowCount: Int, _ columnCount: Int) {
        self.init(rowCount: rowCount, columnCount: columnCount,
                  values: [Scalar](repeating: 0, count: rowCount * columnCount))
    }

    public static func identity(_ size: Int) -> Matrix {
        var result = Matrix(zeros: size, size)
        for i in 0..<size { result[i, i] = 1 }
        return result
    }

    public var shape: [Int] { [rowCount, columnCount] }

    @inlinable
    public subscript(row: Int, column: Int) -> Scalar {
        get { values[row * columnCount + column] }
        set { values[row * columnCount + column] = newValue }
    }

    /// A copy of one row.
    public func row(_ index: Int) -> ArraySlice<Scalar> {
        values[(index * columnCount)..<((index + 1) * columnCount)]
    }

    public var transposed: Matrix {
        var result = Matrix(zeros: columnCount, rowCount)
        values.withUnsafeBufferPointer { source in
            result.values.withUnsafeMutableBufferPointer { destination in
                for r in 0..<rowCount {
                    for c in 0..<columnCount { destination[c * rowCount + r] = source[r * columnCount + c] }
                }
            }
        }
        return result
    }

    /// Frobenius norm, accumulated in Float64.
    public var frobeniusNorm: Double {
        var sum = 0.0
        for value in values { sum += Double(value) * Double(value) }
        return sum.squareRoot()
    }

    /// The largest absolute elementwise difference to `other` (same shape).
    public func maxAbsDifference(_ other: Matrix) -> Double {
        precondition(shape == other.shape)
        var result = 0.0
        for i in values.indices { result = max(result, abs(Double(values[i]) - Double(other.values[i]))) }
        return result
    }
}

extension Tensor {
    /// The tensor as a Float32 matrix: 2-D shapes as they are, 1-D as one row.
    /// Only plain dtypes; block types go through `Checkpoints`.
    public func float32Matrix() throws -> Matrix<Float> {
        let (rows, columns) = try matrixShape()
        return Matrix(rowCount: rows, columnCount: columns, values: try decodedFloat32())
    }

    /// `(rowCount, columnCount)` of a 1-D or 2-D tensor.
    public func matrixShape() throws -> (Int, Int) {
        switch shape.count {
        case 1: return (1, shape[0])
        case 2: return (shape[0], shape[1])
        default: throw TensorError.notAMatrix(name: name, shape: shape)
        }
    }
}
