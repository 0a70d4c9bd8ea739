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
        var packed = [UInt8](repeating: 0, count: (count + 1) / 2)
        var absmax = [Float](repeating: 0, count: blockCount)
        let midpoints = codebook.midpoints.map { SIMD16<Float>(repeating: $0) }
        let codes = codebook.sortedCodes
        packed.withUnsafeMutableBufferPointer { packedOut in
            absmax.withUnsafeMutableBufferPointer { absmaxOut in
                midpoints.withUnsafeBufferPointer { midpoints in
                    codes.withUnsafeBufferPointer { codes in
                        Parallel.forEachChunk(fullBlockCount, minimumChunk: minimumBlocksPerTask(blockSize)) { blocks in
                            for block in blocks {
                                quantizeFullBlock(values.baseAddress! + block * blockSize, blockSize: blockSize,
                                                  midpoints: midpoints, codes: codes,
                                                  packed: packedOut.baseAddress! + block * blockSize / 2,
                                                  absmax: absmaxOut.baseAddress! + block)
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

    /// One full block: `absmax = max |x|`, `u = x · (1/max(absmax, 1e-38))`, code = the sorted
    /// position (number of midpoints below `u`) mapped through `codes`; 16 values per step.
    @inline(__always)
    private static func quantizeFullBlock(_ source: UnsafePointer<Float>, blockSize: Int,
                                          midpoints: UnsafeBufferPointer<SIMD16<Float>>, codes: UnsafeBufferPointer<UInt8>,
                                          packed: UnsafeMutablePointer<UInt8>, absmax: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(source)
        let signMask = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
        var maximum = SIMD16<UInt32>(repeating: 0)
        // |x| compared as unsigned bit patterns: the order of non-negative finite floats.
        for offset in stride(from: 0, to: blockSize, by: 16) {
            let bits = raw.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<UInt32>.self) & signMask
            maximum = pointwiseMax(maximum, bits)
        }
        let blockMaximum = Float(bitPattern: maximum.max())
        absmax.pointee = blockMaximum
        let reciprocal = SIMD16<Float>(repeating: 1 / max(blockMaximum, absmaxFloor))
        for offset in stride(from: 0, to: blockSize, by: 16) {
            let scaled = raw.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self) * reciprocal
            var position = SIMD16<Int32>(repeating: 0)
            for midpoint in midpoints {
                // A true lane of the mask is all ones (−1): subtracting counts it.
                position &-= unsafeBitCast(midpoint .< scaled, to: SIMD16<Int32>.self)
            }
            let destination = packed + offset / 2
            for pair in 0..<8 {
                let high = codes[Int(position[2 * pair])]
                let low = codes[Int(position[2 * pair + 1])]
                destination[pair] = high << 4 | low
            }
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
        pairs.withUnsafeBufferPointer { pairs in
            Parallel.forEachChunk(absmax.count, minimumChunk: minimumBlocksPerTask(blockSize)) { blocks in
                let outputPairs = UnsafeMutableRawPointer(output.baseAddress!)
                for block in blocks {
                    let scale = SIMD2<Float>(repeating: absmax[block])
                    let first = block * blockSize / 2
                    let end = min(first + blockSize / 2, fullPairCount)
                    for pair in first..<end {
                        let decoded = pairs[Int(packed[pair])] * scale
                        outputPairs.storeBytes(of: decoded, toByteOffset: pair * 8, as: SIMD2<Float>.self)
                    }
                }
            }
        }
        if count % 2 == 1 {
            output[count - 1] = quantMap[Int(packed[count / 2] >> 4)] * absmax[(count - 1) / blockSize]
        }
    }
}
