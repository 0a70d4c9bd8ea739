import JSON
import LoquatSupport

/// Conversion of a byte-level BPE tokenizer (GPT-2 style: GPT-2, SmolLM/SmolLM2, Llama 3, Qwen2)
/// between its two on-disk forms:
///
/// - Hugging Face: `tokenizer.json` (formats.md §5.1–5.2) plus `tokenizer_config.json`,
///   `special_tokens_map.json` and `config.json` for special tokens, `add_bos_token` and the chat
///   template;
/// - GGUF: the `tokenizer.ggml.*` and `tokenizer.chat_template` keys (formats.md §2.8) with
///   `tokenizer.ggml.model = "gpt2"`, with the key names and value types gguf-py's converter
///   writes, because llama.cpp's loader checks the types strictly.
///
/// `ggufKeyValues(fromHuggingFaceDirectory:)` is the HF → GGUF direction (formats.md §9, "HF
/// safetensors → GGUF", step 2) and `huggingFaceFiles(fromGGUF:)` the inverse (§9, "GGUF → HF",
/// step 1). Only the tokenizer is converted; weights and `config.json` are other code's business.
///
/// What does not survive a round trip: GGUF `tokenizer.ggml.pre` aliases come back as the
/// canonical id of their family (`llama3` → `llama-bpe`, `starcoder` → `smollm`), and a GGUF
/// that lacks `add_eos_token` gains `add_eos_token = false` (what gguf-py writes for a ByteLevel
/// post-processor).
public enum TokenizerMetadata {
    /// `tokenizer.ggml.token_type` values (formats.md §2.8; llama.cpp `llama_token_type`).
    public enum TokenType: Int32, Sendable, CaseIterable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// GGUF key names (gguf-py `Keys.Tokenizer`; note the real key's spelling `seperator`).
    public enum Key {
        public static let model = "tokenizer.ggml.model"
        public static let pre = "tokenizer.ggml.pre"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenType = "tokenizer.ggml.token_type"
        public static let merges = "tokenizer.ggml.merges"
        public static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
        public static let chatTemplate = "tokenizer.chat_template"
        public static let chatTemplates = "tokenizer.chat_templates"
        public static func chatTemplate(named name: String) -> String { "tokenizer.chat_template.\(name)" }
        public static func add(_ kind: SpecialToken) -> String { "tokenizer.ggml.add_\(kind.rawValue)_token" }
    }

    /// The special-token roles gguf-py records, in the order it records them; `rawValue` is the
    /// Hugging Face spelling (`bos` → `bos_token`, `bos_token_id`).
    public enum SpecialToken: String, Sendable, CaseIterable {
        case bos, eos, unk, sep, pad, mask

        /// `tokenizer.ggml.<…>_token_id`.
        public var idKey: String {
            switch self {
            case .bos: return "tokenizer.ggml.bos_token_id"
            case .eos: return "tokenizer.ggml.eos_token_id"
            case .unk: return "tokenizer.ggml.unknown_token_id"
            case .sep: return "tokenizer.ggml.seperator_token_id"
            case .pad: return "tokenizer.ggml.padding_token_id"
            case .mask: return "tokenizer.ggml.mask_token_id"
            }
        }

        /// `tokenizer_config.json` / `special_tokens_map.json` member (`bos_token`).
        public var configKey: String { rawValue + "_token" }
    }

    /// The placeholder gguf-py writes for an id that has no token (type UNUSED).
    public static func placeholderToken(id: Int) -> String { "[PAD\(id)]" }

    /// gguf-py's `does_token_look_special`: added tokens spelled like control tokens count as
    /// CONTROL even when tokenizer.json does not mark them `special`.
    static func looksSpecial(_ token: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token) { return true }
        if token.hasPrefix("<|") && token.hasSuffix("|>") { return true }
        if token.hasPrefix("<\u{FF5C}") && token.hasSuffix("\u{FF5C}>") { return true }
        return token.hasPrefix("<unused") && token.hasSuffix(">")
    }
}

/// Why a tokenizer could not be converted or built (also spelled `TokenizerError`). `path` is the file (or the GGUF) at fault and `field`
/// the member or key, so the message says exactly where to look.
public struct TokenizerMetadataError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A well-formed tokenizer of a kind the conversion does not handle (WordPiece, a
        /// SentencePiece-style BPE, an unknown pre-tokenizer): JSON-RPC "Unsupported".
        case unsupported
        /// A file or value that is not what its format says (wrong JSON type, id out of range).
        case malformed
    }

    public let kind: Kind
    public let path: String
    /// The JSON member path (`model.type`) or GGUF key (`tokenizer.ggml.pre`); empty for the
    /// file as a whole.
    public let field: String
    public let detail: String

    public init(_ kind: Kind, path: String, field: String, _ detail: String) {
        self.kind = kind
        self.path = path
        self.field = field
        self.detail = detail
    }

    public var description: String {
        field.isEmpty ? "\(path): \(detail)" : "\(path): \(field): \(detail)"
    }
}
