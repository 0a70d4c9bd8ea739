/// Errors about tensor shapes, types and storage.
public enum TensorError: Error, CustomStringConvertible, Sendable, Equatable {
    case notWholeBlocks(dtype: DType, elementCount: Int)
    case byteCountMismatch(name: String, expected: Int, actual: Int)
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    case unsupportedDType(name: String, dtype: DType, operation: String)
    case notAMatrix(name: String, shape: [Int])

    public var description: String {
        switch self {
        case let .notWholeBlocks(dtype, count):
            return "\(count) elements are not a whole number of \(dtype.rawValue) blocks of \(dtype.blockSize)"
        case let .byteCountMismatch(name, expected, actual):
            return "tensor \(name): shape needs \(expected) bytes but \(actual) are stored"
        case let .shapeMismatch(name, expected, actual):
            return "tensor \(name): expected shape \(expected), got \(actual)"
        case let .unsupportedDType(name, dtype, operation):
            return "tensor \(name): \(operation) does not support dtype \(dtype.rawValue)"
        case let .notAMatrix(name, shape):
            return "tensor \(name): shape \(shape) is not a matrix"
        }
    }
}
