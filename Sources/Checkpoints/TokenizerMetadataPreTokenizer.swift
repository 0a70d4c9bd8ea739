import JSON

extension TokenizerMetadata {
    /// The byte-level pre-tokenizer families that have both a tokenizer.json form and a
    /// `tokenizer.ggml.pre` id that llama.cpp implements the same way (formats.md §2.8, §5.2).
    ///
    /// | family | tokenizer.json `pre_tokenizer` | `tokenizer.ggml.pre` |
    /// | --- | --- | --- |
    /// | `gpt2` | `ByteLevel` with `use_regex` (the GPT-2 regex) | `gpt-2` |
    /// | `digitsThenGPT2` | `Sequence[Digits(individual_digits), ByteLevel(use_regex)]` | `smollm` (also read: `starcoder`) |
    /// | `llama3` | `Sequence[Split(Llama-3 regex, Isolated), ByteLevel(no regex)]` | `llama-bpe` (also read: `llama3`, `llama-v3`) |
    /// | `qwen2` | `Sequence[Split(Qwen2 regex, Isolated), ByteLevel(no regex)]` | `qwen2` |
    ///
    /// gguf-py picks the id by hashing the ids of a probe text; we recognise the JSON instead,
    /// which needs no tokenizer and refuses what it does not recognise rather than guessing.
    public enum PreTokenizerFamily: String, Sendable, CaseIterable {
        case gpt2, digitsThenGPT2, llama3, qwen2

        /// The Llama 3 split regex as tokenizer.json spells it (formats.md §5.2).
        static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        /// Qwen2's: the Llama 3 regex with single digits (formats.md §5.2).
        static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

        /// The id written to `tokenizer.ggml.pre`.
        public var ggufName: String {
            switch self {
            case .gpt2: return "gpt-2"
            case .digitsThenGPT2: return "smollm"
            case .llama3: return "llama-bpe"
            case .qwen2: return "qwen2"
            }
        }

        /// The family of a `tokenizer.ggml.pre` id, nil for ids we have no tokenizer.json form
        /// for. Aliases are ids llama.cpp tokenizes with the same regexes (`src/llama-vocab.cpp`).
        public init?(ggufName: String) {
            switch ggufName {
            case "gpt-2": self = .gpt2
            case "smollm", "starcoder": self = .digitsThenGPT2
            case "llama-bpe", "llama3", "llama-v3": self = .llama3
            case "qwen2": self = .qwen2
            default: return nil
            }
        }

        /// Every `tokenizer.ggml.pre` id accepted by `init(ggufName:)`, for messages.
        static let acceptedGGUFNames = ["gpt-2", "smollm", "starcoder", "llama-bpe", "llama3", "llama-v3", "qwen2"]

        /// Recognises a tokenizer.json `pre_tokenizer` value; nil when it is none of the families.
        /// `trim_offsets` is ignored (it moves offsets, never ids); `add_prefix_space: true`
        /// is refused because llama.cpp's BPE never prepends a space.
        public init?(preTokenizer: JSONValue?) {
            guard let preTokenizer, case let .object(object) = preTokenizer else { return nil }
            let steps: [JSONObject]
            if object["type"]?.stringValue == "Sequence" {
                guard let list = object["pretokenizers"]?.arrayValue else { return nil }
                var objects: [JSONObject] = []
                for step in list {
                    guard case let .object(stepObject) = step else { return nil }
                    objects.append(stepObject)
                }
                steps = objects
            } else {
                steps = [object]
            }
            func isByteLevel(_ step: JSONObject, useRegex: Bool) -> Bool {
                step["type"]?.stringValue == "ByteLevel"
                    && (step["use_regex"]?.boolValue ?? true) == useRegex
                    && (step["add_prefix_space"]?.boolValue ?? false) == false
            }
            func splitRegex(_ step: JSONObject) -> String? {
                guard step["type"]?.stringValue == "Split", let regex = step["pattern"]?["Regex"]?.stringValue else { return nil }
                let behavior = step["behavior"]?.stringValue
                let invert = step["invert"]?.boolValue ?? false
                // Isolating the matches, or (the same split) removing what lies between them.
                guard (behavior == "Isolated" && !invert) || (behavior == "Removed" && invert) else { return nil }
                return regex
            }
            switch steps.count {
            case 1 where isByteLevel(steps[0], useRegex: true):
                self = .gpt2
            case 2 where steps[0]["type"]?.stringValue == "Digits" && steps[0]["individual_digits"]?.boolValue == true
                && isByteLevel(steps[1], useRegex: true):
                self = .digitsThenGPT2
            case 2 where isByteLevel(steps[1], useRegex: false):
                switch splitRegex(steps[0]) {
                case Self.llama3Regex?: self = .llama3
                case Self.qwen2Regex?: self = .qwen2
                default: return nil
                }
            default:
                return nil
            }
        }

        /// The tokenizer.json `pre_tokenizer` block, laid out as the reference files have it.
        public var preTokenizerJSON: JSONValue {
            func byteLevel(trimOffsets: Bool, useRegex: Bool) -> JSONValue {
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": .bool(trimOffsets), "use_regex": .bool(useRegex)]
            }
            func split(_ regex: String) -> JSONValue {
                ["type": "Split", "pattern": ["Regex": .string(regex)], "behavior": "Isolated", "invert": false]
            }
            switch self {
            case .gpt2:
                return byteLevel(trimOffsets: true, useRegex: true)
            case .digitsThenGPT2:
                return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true],
                                                             byteLevel(trimOffsets: true, useRegex: true)]]
            case .llama3:
                return ["type": "Sequence", "pretokenizers": [split(Self.llama3Regex), byteLevel(trimOffsets: true, useRegex: false)]]
            case .qwen2:
                return ["type": "Sequence", "pretokenizers": [split(Self.qwen2Regex), byteLevel(trimOffsets: false, useRegex: false)]]
            }
        }

        /// tokenizer.json `normalizer`: NFC for Qwen2 (as its files have it; llama.cpp skips it),
        /// none for the others.
        public var normalizerJSON: JSONValue { self == .qwen2 ? ["type": "NFC"] : .null }

        /// BPE `ignore_merges` (formats.md §5.2): Llama 3 sets it, and llama.cpp turns it on for
        /// the `llama-bpe` pre-tokenizer.
        public var ignoresMerges: Bool { self == .llama3 }

        /// `clean_up_tokenization_spaces` for tokenizer_config.json: llama.cpp's `clean_spaces`
        /// for the same pre-tokenizer (off for `smollm` and `qwen2`).
        public var cleansUpTokenizationSpaces: Bool { self == .gpt2 || self == .llama3 }
    }

    /// A short spelling of a `pre_tokenizer` value for messages:
    /// `Sequence[Split(Regex), Digits(individual_digits: false), ByteLevel(use_regex: true)]`.
    static func describePreTokenizer(_ value: JSONValue?) -> String {
        guard let value, case let .object(object) = value else { return value.map { "a \($0.typeName)" } ?? "missing" }
        let type = object["type"]?.stringValue ?? "?"
        switch type {
        case "Sequence":
            let steps = (object["pretokenizers"]?.arrayValue ?? []).map { describePreTokenizer($0) }
            return "Sequence[\(steps.joined(separator: ", "))]"
        case "ByteLevel":
            return "ByteLevel(use_regex: \(object["use_regex"]?.boolValue ?? true), add_prefix_space: \(object["add_prefix_space"]?.boolValue ?? false))"
        case "Digits":
            return "Digits(individual_digits: \(object["individual_digits"]?.boolValue ?? false))"
        case "Split":
            if let regex = object["pattern"]?["Regex"]?.stringValue { return "Split(Regex \(regex))" }
            return "Split(\(object["pattern"]?["String"]?.stringValue.map { "String \($0)" } ?? "?"))"
        default:
            return type
        }
    }
}
