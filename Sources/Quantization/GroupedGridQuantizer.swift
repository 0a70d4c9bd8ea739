import Tensors

/// Round-to-nearest on a `GridRule`, group by group: fit the group's parameters, encode its values.
/// Used by int, nf and fp8 (HQQ and GPTQ have their own loops on the same stored form).
public enum GroupedGridQuantizer {
    /// Elements per group for a row of `columnCount` (`spec.groupSize == 0`: the whole row).
    public static func groupSize(_ spec: QuantizationSpec, columnCount: Int) -> Int {
        spec.groupSize == 0 ? columnCount : spec.groupSize
    }

    /// The spec checks every grid family shares (the dispatcher runs them too; families repeat
    /// them so that a direct call cannot bypass them).
    static func validate(_ weight: Matrix<Float>, spec: QuantizationSpec, method: QuantizationMethod) throws {
        guard spec.method == method else {
            throw QuantizationError.invalidParameter("method", "\(method.rawValue) quantizer called with \(spec.method.rawValue)")
        }
        try spec.validate(columnCount: weight.columnCount)
        guard weight.columnCount > 0 else {
            throw QuantizationError.invalidParameter("model", "a weight with no input columns cannot be grouped")
        }
    }

    /// Fast path: rows in parallel, SIMD reductions and encoders, unsafe buffers.
    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec, rule: GridRule) -> GroupedGridWeight {
        let (rows, columns) = (weight.rowCount, weight.columnCount)
        let size = groupSize(spec, columnCount: columns)
        let groups = columns / size
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var scales = [Float](repeating: 0, count: rows * groups)
        var zeros = [Float](repeating: 0, count: rows * groups)
        weight.values.withUnsafeBufferPointer { source in
            rule.levels.withUnsafeBufferPointer { levels in
                codes.withUnsafeMutableBufferPointer { codeBuffer in
                    scales.withUnsafeMutableBufferPointer { scaleBuffer in
                        zeros.withUnsafeMutableBufferPointer { zeroBuffer in
                            let targets = UncheckedSendable((codeBuffer, scaleBuffer, zeroBuffer))
                            Parallel.forEachChunk(rows * groups, minimumChunk: max(1, 4096 / size)) { range in
                                let (codeOut, scaleOut, zeroOut) = targets.value
                                for flat in range {
                                    let offset = flat * size  // rows × groups in order = contiguous groups
                                    let values = UnsafeBufferPointer(rebasing: source[offset..<(offset + size)])
                                    let parameters = rule.fit(values)
                                    scaleOut[flat] = parameters.scale
                                    zeroOut[flat] = parameters.zeroPoint
                                    encode(values, parameters, rule: rule, levels: levels, into: codeOut.baseAddress! + offset)
                                }
                            }
                        }
                    }
                }
            }
        }
        return GroupedGridWeight(rowCount: rows, columnCount: columns, spec: spec, bits: rule.bits, groupSize: size,
                                 codes: codes, scales: scales, zeroPoints: rule.zeroPoints(zeros),
                                 levels: rule.gridLevels, scaleBitCount: rule.scaleBitCount)
    }

    /// Encodes one group with the family's fast kernel.
    static func encode(_ values: UnsafeBufferPointer<Float>, _ parameters: GroupParameters, rule: GridRule,
                       levels: UnsafeBufferPointer<Float>, into codes: UnsafeMutablePointer<UInt8>) {
        switch rule.kind {
        case .integer:
            IntegerGrid.encode(values.baseAddress!, count: values.count, parameters, maxCode: rule.maxCode, into: codes)
        case .normalFloat:
            for index in values.indices {
                codes[index] = NormalFloatCodebook.nearestCode(values[index] / parameters.scale, levels)
            }
        case let .fp8(format):
            for index in values.indices { codes[index] = FP8Encoding.encode(values[index] / parameters.scale, format) }
        }
    }

    /// Scalar reference: loops over rows and groups, range by plain comparisons, codes by the
    /// scalar definitions (`IntegerGrid.code`, `nearestCodeReference`, `FP8Encoding.encode`).
    public static func quantizeReference(_ weight: Matrix<Float>, spec: QuantizationSpec, rule: GridRule) -> GroupedGridWeight {
        let (rows, columns) = (weight.rowCount, weight.columnCount)
        let size = groupSize(spec, columnCount: columns)
        let groups = columns / size
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var scales = [Float](), zeros = [Float]()
        for row in 0..<rows {
            for g in 0..<groups {
                let start = row * columns + g * size
                let group = Array(weight.values[start..<(start + size)])
                var minimum = group[0], maximum = group[0]
                for value in group {
                    minimum = min(minimum, value)
                    maximum = max(maximum, value)
                }
                let parameters: GroupParameters
                switch rule.kind {
                case let .integer(symmetric):
                    parameters = group.withUnsafeBufferPointer {
                        IntegerGrid.fit($0, minimum: minimum, maximum: maximum, bits: rule.bits,
                                        symmetric: symmetric, clipSearch: rule.clipSearch)
                    }
                case .normalFloat:
                    let absmax = max(-minimum, maximum)
                    parameters = GroupParameters(scale: absmax > 0 ? absmax : 1, zeroPoint: 0)
                case let .fp8(format):
                    let absmax = max(-minimum, maximum)
                    parameters = GroupParameters(scale: absmax > 0 ? absmax / FP8Encoding.maxFinite(format) : 1, zeroPoint: 0)
                }
                scales.append(parameters.scale)
                zeros.append(parameters.zeroPoint)
                for (index, value) in group.enumerated() {
                    let code: UInt8
                    switch rule.kind {
                    case .integer: code = IntegerGrid.code(value, parameters, maxCode: rule.maxCode)
                    case .normalFloat: code = NormalFloatCodebook.nearestCodeReference(value / parameters.scale, rule.levels)
                    case let .fp8(format): code = FP8Encoding.encode(value / parameters.scale, format)
                    }
                    codes[start + index] = code
                }
            }
        }
        return GroupedGridWeight(rowCount: rows, columnCount: columns, spec: spec, bits: rule.bits, groupSize: size,
                                 codes: codes, scales: scales, zeroPoints: rule.zeroPoints(zeros),
                                 levels: rule.gridLevels, scaleBitCount: rule.scaleBitCount)
    }
}
