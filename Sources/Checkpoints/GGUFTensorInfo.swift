import LoquatSupport
import Tensors

/// One tensor's entry in a GGUF file: `gguf_string name`, `u32 n_dims`, `u64 ne[n_dims]`
/// (innermost first), `u32 ggml_type`, `u64 offset` relative to the data section
/// (formats.md §2.1).
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let typeID: UInt32
    public let dtype: DType
    /// ggml dimensions, innermost (fastest-varying) first.
    public let ne: [Int]
    /// Offset of the first byte from the start of the data section.
    public let dataByteOffset: Int
    public let byteCount: Int

    public init(name: String, dtype: DType, ne: [Int], dataByteOffset: Int, byteCount: Int) {
        self.name = name
        self.typeID = GGUFTensorType.typeID(of: dtype) ?? UInt32.max
        self.dtype = dtype
        self.ne = ne
        self.dataByteOffset = dataByteOffset
        self.byteCount = byteCount
    }

    /// PyTorch order, outermost first: `ne` reversed.
    public var shape: [Int] { ne.reversed() }

    /// Elements in one ggml row (`ne[0]`); 1 for a zero-dimensional tensor.
    public var rowLength: Int { ne.first ?? 1 }

    /// Number of ggml rows (`ne[1]·ne[2]·ne[3]`).
    public var rowCount: Int { ne.dropFirst().reduce(1, *) }

    /// `nb[1]` = bytes per ggml row = `ne[0] / block_size · type_size`.
    public var rowByteCount: Int { rowLength / dtype.blockSize * dtype.blockByteCount }
}

extension GGUFParser {
    /// Reads `count` tensor infos and checks each as `gguf.cpp` does: name < 64 bytes and unique,
    /// `n_dims ≤ 4`, every `ne ≥ 0` with a non-overflowing product, a supported ggml type, and
    /// `ne[0]` a multiple of the type's block size. Offsets are checked by `checkLayout`.
    mutating func readTensorInfos(count: Int) throws -> [(info: GGUFTensorInfo, rawOffset: UInt64, infoOffset: Int)] {
        var infos: [(info: GGUFTensorInfo, rawOffset: UInt64, infoOffset: Int)] = []
        infos.reserveCapacity(count)
        var seen = Set<String>()
        for index in 0..<count {
            let start = offset
            let name = try readString("name of tensor \(index)")
            guard name.utf8.count < Self.maximumNameByteCount else { throw error(.tensorNameTooLong(name), at: start) }
            guard seen.insert(name).inserted else { throw error(.duplicateTensorName(name), at: start) }

            let dimensionCount = try readUInt32("n_dims of \(name)")
            guard dimensionCount <= Self.maximumDimensionCount else {
                throw error(.tooManyDimensions(tensor: name, dimensionCount: dimensionCount), at: start)
            }
            var rawNE: [UInt64] = []
            for axis in 0..<Int(dimensionCount) { rawNE.append(try readUInt64("ne[\(axis)] of \(name)")) }
            guard rawNE.allSatisfy({ $0 <= UInt64(Int64.max) }) else {
                throw error(.invalidDimension(tensor: name, ne: rawNE), at: start)
            }
            let ne = rawNE.map { Int($0) }

            let typeID = try readUInt32("type of \(name)")
            guard let dtype = GGUFTensorType.dtype(forTypeID: typeID) else {
                throw error(.unsupportedTensorType(tensor: name, typeID: typeID,
                                                   typeName: GGUFTensorType.name(forTypeID: typeID)), at: start)
            }
            let rawOffset = try readUInt64("data offset of \(name)")

            let rowLength = ne.first ?? 1
            guard rowLength % dtype.blockSize == 0 else {
                throw error(.rowNotWholeBlocks(tensor: name, rowLength: rowLength, blockSize: dtype.blockSize), at: start)
            }
            let byteCount: Int
            do {
                let elementCount = try CheckedArithmetic.product(ne, "elements of \(name)")
                byteCount = try CheckedArithmetic.multiply(elementCount / dtype.blockSize, dtype.blockByteCount,
                                                           "bytes of \(name)")
            } catch {
                throw self.error(.sizeOverflow(what: "tensor \(name) with ne=\(ne)"), at: start)
            }
            let info = GGUFTensorInfo(name: name, dtype: dtype, ne: ne, dataByteOffset: 0, byteCount: byteCount)
            infos.append((info, rawOffset, start))
        }
        return infos
    }

    /// Checks that tensor data is where llama.cpp expects it: every offset a multiple of the
    /// alignment and equal to the sum of the previous tensors' padded sizes, and every tensor
    /// inside the file. Returns the infos with their offsets set.
    func checkLayout(_ raw: [(info: GGUFTensorInfo, rawOffset: UInt64, infoOffset: Int)], alignment: Int,
                     dataStart: Int, fileByteCount: Int) throws -> [GGUFTensorInfo] {
        var expected = 0
        var result: [GGUFTensorInfo] = []
        result.reserveCapacity(raw.count)
        for (info, rawOffset, infoOffset) in raw {
            guard rawOffset % UInt64(alignment) == 0 else {
                throw error(.misalignedOffset(tensor: info.name, offset: rawOffset, alignment: alignment), at: infoOffset)
            }
            guard rawOffset == UInt64(expected) else {
                throw error(.unexpectedOffset(tensor: info.name, offset: rawOffset, expected: expected), at: infoOffset)
            }
            let end: Int
            do {
                end = try CheckedArithmetic.add(try CheckedArithmetic.add(dataStart, expected, ""), info.byteCount, "")
                expected = try CheckedArithmetic.alignUp(try CheckedArithmetic.add(expected, info.byteCount, ""),
                                                         to: alignment)
            } catch {
                throw self.error(.sizeOverflow(what: "data section at tensor \(info.name)"), at: infoOffset)
            }
            guard end <= fileByteCount else {
                throw error(.tensorPastEnd(tensor: info.name, endOffset: end, fileByteCount: fileByteCount),
                            at: infoOffset)
            }
            result.append(GGUFTensorInfo(name: info.name, dtype: info.dtype, ne: info.ne,
                                         dataByteOffset: Int(rawOffset), byteCount: info.byteCount))
        }
        return result
    }
}
