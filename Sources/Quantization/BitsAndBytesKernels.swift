#if canImport(Glibc)
import Glibc
#endif
import Tensors

/// Fast paths of bitsandbytes 4-bit quantization: unsafe buffers, 16-lane SIMD, blocks in
/// parallel. `BitsAndBytesReference` holds the scalar statement of the same arithmetic and
/// the tests require bit-identical results.
enum BitsAndBytesKernels {
    /// bnb's lower clamp of absmax before the reciprocal (`absmax.clamp(min=1e-38)` in float32).
    static let absmaxFloor = Float(1e-38)
    /// Blocks per parallel task: about 16k elements.
    static func minimumBlocksPerTask(_ blockSize: Int) -> Int { max(1, 16_384 / blockSize) }

    /// Quantizes `values` in blocks of `blockSize` (a power of two ≥ 32, so a multiple of 16).
    /// Returns the packed codes (`(n+1)/2` bytes, first element high) and the absmax per block.
    static func quantize(_ values: UnsafeBufferPointer<Float>, blockSize: Int,
                         codebook: BitsAndBytesCodebook) -> (packed: [UInt8], absmax: [Float]) {
        let count = values.count
        let fullBlockCount = count / blockSize
        let blockCount = (count + blockSize - 1) / blockSize
        var packed = [UInt8](unsafeUninitializedCapacity: (count + 1) / 2) { bytes, initializedCount in
            HugePages.advise(bytes)
            // Full blocks overwrite their bytes; the ragged block ORs its codes into zeros.
            let raggedStart = fullBlockCount * blockSize / 2
            if raggedStart < bytes.count {
                (bytes.baseAddress! + raggedStart).initialize(repeating: 0, count: bytes.count - raggedStart)
            }
            initializedCount = bytes.count
        }
        var absmax = [Float](repeating: 0, count: blockCount)
        let midpoints = codebook.midpoints.map { SIMD16<Float>(repeating: $0) }
        // Byte of two sorted positions → byte of their two codes (the identity for NF4).
        let positionPairToCodes: [UInt8]? = codebook.sortedCodes == Array(0...15) ? nil
            : (0..<256).map { codebook.sortedCodes[$0 >> 4] << 4 | codebook.sortedCodes[$0 & 0xF] }
        packed.withUnsafeMutableBufferPointer { packedOut in
            absmax.withUnsafeMutableBufferPointer { absmaxOut in
                midpoints.withUnsafeBufferPointer { midpoints in
                    Parallel.forEachChunk(fullBlockCount, minimumChunk: minimumBlocksPerTask(blockSize)) { blocks in
                        for block in blocks {
                            quantizeFullBlock(values.baseAddress! + block * blockSize, blockSize: blockSize, midpoints: midpoints,
                                              packed: packedOut.baseAddress! + block * blockSize / 2,
                                              absmax: absmaxOut.baseAddress! + block)
                        }
                        if let positionPairToCodes {
                            let bytes = packedOut.baseAddress!
                            for index in (blocks.lowerBound * blockSize / 2)..<(blocks.upperBound * blockSize / 2) {
                                bytes[index] = positionPairToCodes[Int(bytes[index])]
                            }
                        }
                    }
                }
                if fullBlockCount < blockCount {
                    quantizeRaggedBlock(values, start: fullBlockCount * blockSize, codebook: codebook,
                                        packed: packedOut, absmax: absmaxOut.baseAddress! + fullBlockCount)
                }
            }
        }
        return (packed, absmax)
    }

    /// One full block: `absmax = max |x|`, `u = x · (1/max(absmax, 1e-38))`, and per value its
    /// sorted position (the number of midpoints below `u`), two per byte; 16 values per step.
    @inline(__always)
    private static func quantizeFullBlock(_ source: UnsafePointer<Float>, blockSize: Int,
                                          midpoints: UnsafeBufferPointer<SIMD16<Float>>,
                                          packed: UnsafeMutablePointer<UInt8>, absmax: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(source)
        let signMask = SIMD16<Int32>(repeating: 0x7FFF_FFFF)
        var maximum = SIMD16<Int32>(repeating: 0)
        // |x| compared as bit patterns: for non-negative finite floats their order is the integers'.
        for offset in stride(from: 0, to: blockSize, by: 16) {
            let bits = raw.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Int32>.self) & signMask
            maximum = maximum.replacing(with: bits, where: bits .> maximum)
        }
        let blockMaximum = Float(bitPattern: UInt32(maximum.max()))
        absmax.pointee = blockMaximum
        let reciprocal = SIMD16<Float>(repeating: 1 / max(blockMaximum, absmaxFloor))
        let output = UnsafeMutableRawPointer(packed)
        for offset in stride(from: 0, to: blockSize, by: 16) {
            let scaled = raw.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self) * reciprocal
            var position = SIMD16<Int32>(repeating: 0)
            for midpoint in midpoints {
                // A true lane of the mask is all ones (−1): subtracting counts it.
                position &-= unsafeBitCast(midpoint .< scaled, to: SIMD16<Int32>.self)
            }
            let pairs = (position.evenHalf &<< 4) | position.oddHalf
            output.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: pairs), toByteOffset: offset / 2, as: SIMD8<UInt8>.self)
        }
    }

    /// The ragged last block, scalar: bnb divides by the clamped absmax and stores it clamped.
    private static func quantizeRaggedBlock(_ values: UnsafeBufferPointer<Float>, start: Int, codebook: BitsAndBytesCodebook,
                                            packed: UnsafeMutableBufferPointer<UInt8>, absmax: UnsafeMutablePointer<Float>) {
        var maximum: Float = 0
        for index in start..<values.count { maximum = max(maximum, abs(values[index])) }
        let clamped = max(maximum, absmaxFloor)
        absmax.pointee = clamped
        for index in start..<values.count {
            let code = codebook.code(forScaled: min(max(values[index] / clamped, -1), 1))
            packed[index / 2] |= index % 2 == 0 ? code << 4 : code
        }
        if values.count % 2 == 1 { packed[values.count / 2] |= codebook.zeroCode }
    }

    /// `output[i] = quantMap[code_i] · absmax[i / blockSize]`, through a 256-entry table of the
    /// two values a byte decodes to; blocks in parallel.
    static func dequantize(packed: UnsafeBufferPointer<UInt8>, absmax: UnsafeBufferPointer<Float>, quantMap: [Float],
                           blockSize: Int, into output: UnsafeMutableBufferPointer<Float>) {
        let count = output.count
        precondition(packed.count == (count + 1) / 2 && absmax.count == (count + blockSize - 1) / blockSize && blockSize % 2 == 0)
        let pairs = (0..<256).map { SIMD2<Float>(quantMap[$0 >> 4], quantMap[$0 & 0xF]) }
        let fullPairCount = count / 2
        guard Int(bitPattern: output.baseAddress) % MemoryLayout<SIMD2<Float>>.alignment == 0 else {
            for index in 0..<count {  // caller memory not aligned for pairs: one value at a time
                let byte = packed[index / 2]
                output[index] = quantMap[Int(index % 2 == 0 ? byte >> 4 : byte & 0x0F)] * absmax[index / blockSize]
            }
            return
        }
        pairs.withUnsafeBufferPointer { pairs in
            Parallel.forEachChunk(absmax.count, minimumChunk: minimumBlocksPerTask(blockSize)) { blocks in
                // Float arrays are at least 8-byte aligned, so pairs of floats can be stored as SIMD2.
                output.baseAddress!.withMemoryRebound(to: SIMD2<Float>.self, capacity: fullPairCount) { outputPairs in
                    for block in blocks {
                        let scale = SIMD2<Float>(repeating: absmax[block])
                        let first = block * blockSize / 2
                        let end = min(first + blockSize / 2, fullPairCount)
                        for pair in first..<end { outputPairs[pair] = pairs[Int(packed[pair])] * scale }
                    }
                }
            }
        }
        if count % 2 == 1 {
            output[count - 1] = quantMap[Int(packed[count / 2] >> 4)] * absmax[(count - 1) / blockSize]
        }
    }
}

/// Fresh allocations of many MiB fault in one 4 KiB page at a time, which costs more than the
/// kernels that fill them (measured: 73 ms of faults against 10 ms of work for a 64 MiB
/// dequantization). Where transparent huge pages are in `madvise` mode, asking for them turns
/// that into a few 2 MiB faults.
enum HugePages {
    static let minimumByteCount = 4 << 20

    /// Advises huge pages for the 2 MiB-aligned interior of a buffer not yet touched.
    static func advise<Element>(_ buffer: UnsafeMutableBufferPointer<Element>) {
        #if canImport(Glibc)
        let byteCount = buffer.count * MemoryLayout<Element>.stride
        guard byteCount >= minimumByteCount, let base = buffer.baseAddress else { return }
        let hugePage = 2 << 20
        let start = (Int(bitPattern: base) + hugePage - 1) & ~(hugePage - 1)
        let end = (Int(bitPattern: base) + byteCount) & ~(hugePage - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
        #endif
    }
}
