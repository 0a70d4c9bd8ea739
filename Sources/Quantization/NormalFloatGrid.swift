import Tensors

/// NormalFloat-k, `bits` 2, 3, 4, 8, as LoftQ quantizes (PEFT `NFQuantizer.quantize_block`,
/// LoftQ `quant_nf4_block`; algorithms.md §2): per group of `groupSize` input columns,
/// `scale = absmax` (Float32; a group of zeros gets scale 1), `u = x / scale`, and the code is the
/// nearest entry of `NormalFloatCodebook.values(bits:)` (lowest index on ties). Dequantized
/// `x̂ = scale · codebook[code]`. LoftQ blocks the flattened matrix; with groups along a row the two
/// coincide whenever `groupSize` divides the row, which `validate` requires.
///
/// This is LoftQ's NF-k, not bitsandbytes' `nf4` method: the 4-bit codebook matches bnb's table
/// to ~1e−7 (see `NormalFloatCodebook`), and the stored form is unpacked codes with Float32 scales.
public enum NormalFloatGrid {
    public static let isImplemented = true

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        try quantizeGrid(weight, spec: spec)
    }

    public static func quantizeGrid(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> GroupedGridWeight {
        try GroupedGridQuantizer.validate(weight, spec: spec, method: .nf)
        return GroupedGridQuantizer.quantize(weight, spec: spec, rule: rule(spec))
    }

    public static func rule(_ spec: QuantizationSpec) -> GridRule {
        GridRule(kind: .normalFloat, bits: spec.bits)
    }
}
