import LoquatSupport
import Tensors

/// The on-disk form a checkpoint came from.
public enum CheckpointFormat: String, Sendable {
    case safetensors
    case gguf
}

/// A checkpoint opened for use: tensors under their Hugging Face names in torch order (GGUF
/// names are mapped and llama.cpp's Q/K row permutation undone), plus what is needed to write
/// it back out. Tensors point into the mapped files; nothing is copied at load.
public struct LoadedCheckpoint: Sendable {
    public let format: CheckpointFormat
    /// The path the user gave (a file or a directory).
    public let path: String
    /// Every file whose bytes the tensors may point into; a save must never overwrite these.
    public let sourceFiles: [String]
    /// `llama`, `bert`, or the name the file declares.
    public let architecture: String
    public let tensors: [Tensor]
    public let config: ModelConfig?
    /// GGUF key/values of the source (tokenizer, names) to carry over when writing GGUF.
    public let ggufMetadata: [GGUFKeyValue]
    private let indexByName: [String: Int]

    public init(format: CheckpointFormat, path: String, sourceFiles: [String], architecture: String,
                tensors: [Tensor], config: ModelConfig?, ggufMetadata: [GGUFKeyValue] = []) {
        self.format = format
        self.path = path
        self.sourceFiles = sourceFiles
        self.architecture = architecture
        self.tensors = tensors
        self.config = config
        self.ggufMetadata = ggufMetadata
        var index: [String: Int] = [:]
        for (position, tensor) in tensors.enumerated() { index[tensor.name] = position }
        self.indexByName = index
    }

    public func tensor(named name: String) -> Tensor? { indexByName[name].map { tensors[$0] } }

    /// The same checkpoint (format, path, source files, architecture, config, GGUF keys) holding
    /// `tensors` instead: a quantized model's dequantized view, a merge, an adapted base.
    public func replacingTensors(_ tensors: [Tensor]) -> LoadedCheckpoint {
        LoadedCheckpoint(format: format, path: path, sourceFiles: sourceFiles, architecture: architecture,
                         tensors: tensors, config: config, ggufMetadata: ggufMetadata)
    }

    /// Elements of floating-point tensors (weights); integer buffers such as BERT's
    /// `position_ids` are not parameters, as in PyTorch's `numel` over `parameters()`.
    public var parameterCount: Int {
        tensors.reduce(0) { $0 + ($1.dtype.isFloatingPoint || $1.dtype.isBlockQuantized ? $1.elementCount : 0) }
    }
    public var byteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }
}

extension Tensor {
    /// Float32 values of any tensor: plain dtypes elementwise, GGUF block types through
    /// `GGMLBlockCodec`.
    public func float32Values() throws -> [Float] {
        dtype.isBlockQuantized ? try GGMLBlockCodec.decode(self) : try decodedFloat32()
    }

    /// `float32Values()` as a row-major matrix (1-D tensors are one row).
    public func float32MatrixAnyDType() throws -> Matrix<Float> {
        let (rows, columns) = try matrixShape()
        return Matrix(rowCount: rows, columnCount: columns, values: try float32Values())
    }
}

extension LoadedCheckpoint {
    /// GGUF keys the writer derives itself; everything else under `general.` and `tokenizer.`
    /// is carried over from a GGUF source (the tokenizer llama.cpp needs to load the file).
    static let derivedGGUFKeys: Set<String> = ["general.architecture", "general.file_type",
                                               "general.quantization_version", "general.alignment"]

    /// Writes a llama.cpp-loadable GGUF v3: HF names mapped, Q/K rows permuted, matrices as
    /// `weightType` (F32, F16, Q8_0 or Q4_0), 1-D tensors F32.
    public func writeGGUF(to path: String, weightType: DType, overwrite: Bool) throws {
        guard case .llama? = config?.architecture else {
            throw CheckpointError.unsupported(path: path, reason: "GGUF export is implemented for the llama architecture; this model is \(architecture)")
        }
        let hyperparameters = try config!.llamaHyperparameters()
        var carried = ggufMetadata.filter { entry in
            (entry.key.hasPrefix("general.") || entry.key.hasPrefix("tokenizer.")) && !Self.derivedGGUFKeys.contains(entry.key)
        }
        if !carried.contains(where: { $0.key == TokenizerMetadata.Key.model }),
           let tokenizer = try tokenizerGGUFKeyValues(vocabularySize: hyperparameters.vocabularySize) {
            carried += tokenizer
        }
        // llama.cpp refuses a model without its vocabulary ("key not found: tokenizer.ggml.model"),
        // so an export that cannot carry one is refused instead of written unloadable.
        guard carried.contains(where: { $0.key == "tokenizer.ggml.model" }) else {
            throw CheckpointError.unsupported(path: path, reason: "the source \(self.path) has no tokenizer (no tokenizer.json beside it and no tokenizer.ggml.* keys), and llama.cpp cannot load a GGUF without one")
        }
        let writer = GGUFWriter(hyperparameters: hyperparameters, weightType: weightType, extraMetadata: carried)
        try writer.write(huggingFaceTensors: tensors, to: path, overwrite: overwrite)
    }
}
