import Tensors

/// FP8 weights with per-channel (`groupSize` 0, the default) or per-group scales, as in
/// ZeroQuant-FP (Wu et al., arXiv 2307.09782): `scale = absmax / maxFinite` (448 for E4M3, 57344
/// for E5M2; Float32, a group of zeros gets scale 1), `code = fp8(x / scale)` rounded to nearest
/// even (`FP8Encoding`), `x̂ = scale · fp8⁻¹(code)`. The group's absmax lands exactly on ±maxFinite.
public enum FP8Grid {
    public static let isImplemented = true

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        try quantizeGrid(weight, spec: spec)
    }

    public static func quantizeGrid(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> GroupedGridWeight {
        try GroupedGridQuantizer.validate(weight, spec: spec, method: .fp8)
        return GroupedGridQuantizer.quantize(weight, spec: spec, rule: rule(spec))
    }

    public static func rule(_ spec: QuantizationSpec) -> GridRule {
        GridRule(kind: .fp8(spec.fp8Format), bits: 8)
    }
}
