import LoquatSupport

/// Raw bytes of a tensor: either owned, or a window into a memory-mapped file that the storage
/// keeps alive. Immutable once made, so it is shared freely between resident objects.
public final class TensorStorage: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    private let ownedBase: UnsafeMutableRawPointer?

    /// A window into `file`, not copied.
    public init(mapped file: MappedFile, byteOffset: Int, byteCount: Int) {
        precondition(byteOffset >= 0 && byteCount >= 0 && byteOffset + byteCount <= file.bytes.count)
        self.owner = file
        self.ownedBase = nil
        self.bytes = byteCount == 0
            ? UnsafeRawBufferPointer(start: nil, count: 0)
            : UnsafeRawBufferPointer(rebasing: file.bytes[byteOffset..<(byteOffset + byteCount)])
    }

    /// Copies `source` into a new 64-byte aligned allocation.
    public init(copying source: UnsafeRawBufferPointer) {
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        if source.count > 0 { base.copyMemory(from: source.baseAddress!, byteCount: source.count) }
        self.ownedBase = base
        self.owner = nil
        self.bytes = UnsafeRawBufferPointer(start: base, count: source.count)
    }

    /// Owned storage of the given Float32 values (copied while the array is alive).
    public static func float32(_ values: [Float]) -> TensorStorage {
        values.withUnsafeBytes { TensorStorage(copying: $0) }
    }

    /// Owned storage of freshly written bytes (copied while the array is alive).
    public static func bytes(_ bytes: [UInt8]) -> TensorStorage {
        bytes.withUnsafeBytes { TensorStorage(copying: $0) }
    }

    public var isMapped: Bool { owner is MappedFile }

    deinit { ownedBase?.deallocate() }
}

/// A named n-dimensional array in row-major (PyTorch) order. `shape` is outermost first.
public struct Tensor: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage

    /// Checks that the storage holds exactly the bytes the shape and dtype need.
    public init(name: String, dtype: DType, shape: [Int], storage: TensorStorage) throws {
        let elementCount = try CheckedArithmetic.product(shape, "shape of \(name)")
        let expected = try dtype.byteCount(elementCount: elementCount)
        guard expected == storage.bytes.count else {
            throw TensorError.byteCountMismatch(name: name, expected: expected, actual: storage.bytes.count)
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// An owned Float32 tensor.
    public init(name: String, shape: [Int], float32 values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.name = name
        self.dtype = .f32
        self.shape = shape
        self.storage = TensorStorage.float32(values)
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { storage.bytes.count }

    /// The same bytes under another name (tensors are shared, not copied).
    public func renamed(_ newName: String) -> Tensor {
        // Shape and storage were already validated.
        try! Tensor(name: newName, dtype: dtype, shape: shape, storage: storage)
    }

    /// The same bytes viewed with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        try Tensor(name: name, dtype: dtype, shape: newShape, storage: storage)
    }
}
