import Tensors
import LinearAlgebra
import Quantization

/// LoRA adapters (PEFT vocabulary), their initialisations, merging and extraction live here.
/// Created empty by the foundation issue; the initAdapter, merge and extract issues fill it.
public enum AdaptersModule {
    /// Initialisation methods implemented so far; `initialize` reports this list.
    public static let initMethods: [String] = []
}
