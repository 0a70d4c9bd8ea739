import Tensors
import LinearAlgebra

/// Weight quantizers (NF4/FP4 bitsandbytes-exact, INT-k, NF-k, FP8, GPTQ, HQQ, rotation,
/// outliers) live here, one file per family. This module is created empty by the foundation
/// issue; the quantize issue fills it.
public enum QuantizationModule {
    /// Methods implemented so far; `initialize` reports this list.
    public static let methods: [String] = []
}
