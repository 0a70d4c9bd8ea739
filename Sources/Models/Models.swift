import Tensors
import LinearAlgebra
import Quantization
import Adapters
import Checkpoints

/// Architectures, tokenizers, the forward pass and calibration capture live here.
/// Created empty by the foundation issue; the evaluate/calibrate issue fills it.
public enum ModelsModule {
    /// Architectures with a forward pass so far.
    public static let forwardArchitectures: [String] = ["llama"]
}
