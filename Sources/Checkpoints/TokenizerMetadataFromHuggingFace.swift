import JSON
import LoquatSupport

extension TokenizerMetadata {
    /// The `tokenizer.*` GGUF keys for the Hugging Face tokenizer in `directory` (formats.md §9,
    /// "HF safetensors → GGUF", step 2), with the names, types and values gguf-py's converter
    /// (`_set_vocab_gpt2` + `SpecialVocab`) writes for a byte-level BPE vocabulary (§2.8):
    ///
    /// | key | type | from |
    /// | --- | --- | --- |
    /// | `tokenizer.ggml.add_space_prefix` | BOOL | tokenizer_config `add_prefix_space`, when present |
    /// | `tokenizer.ggml.model` | STRING | `gpt2` |
    /// | `tokenizer.ggml.pre` | STRING | the recognised `pre_tokenizer` (`PreTokenizerFamily`) |
    /// | `tokenizer.ggml.tokens` | ARRAY[STRING] | tokens by id: `model.vocab` and `added_tokens`; `[PAD<id>]` for holes |
    /// | `tokenizer.ggml.token_type` | ARRAY[INT32] | NORMAL vocab, CONTROL special (or special-looking) added tokens, USER_DEFINED other added tokens, UNUSED holes |
    /// | `tokenizer.ggml.merges` | ARRAY[STRING] | `model.merges` as `"a b"` in rank order (pairs joined; a space inside a part becomes `Ġ`) |
    /// | `tokenizer.ggml.{bos,eos,unknown,seperator,padding,mask}_token_id` | UINT32 | tokenizer_config / special_tokens_map `<role>_token` (looked up in `added_tokens`, then `model.vocab`), else config.json `<role>_token_id` |
    /// | `tokenizer.ggml.add_{bos,eos,sep}_token` | BOOL | the post-processor (ByteLevel ⇒ no BOS/EOS; TemplateProcessing's leading/trailing special token), else tokenizer_config `add_<role>_token` |
    /// | `tokenizer.chat_template` (+ `.<name>`, `tokenizer.chat_templates`) | STRING (ARRAY[STRING]) | tokenizer_config `chat_template`, else chat_template.jinja / chat_template.json |
    ///
    /// The vocabulary size (length of the token list) is `vocabularySize` when given (pass
    /// the model's embedding rows, i.e. config.json `vocab_size`), else config.json's
    /// `vocab_size`, else the largest id + 1.
    ///
    /// Returns nil when the directory has no tokenizer.json. Throws `TokenizerMetadataError`
    /// (`.unsupported`) for a tokenizer that is not byte-level BPE (WordPiece, Unigram,
    /// WordLevel, SentencePiece-style BPE with `byte_fallback`) or whose pre-tokenizer is none
    /// of `PreTokenizerFamily`, and (`.malformed`) for files that break their format.
    public static func ggufKeyValues(fromHuggingFaceDirectory directory: String,
                                     vocabularySize: Int? = nil) throws -> [GGUFKeyValue]? {
        let tokenizerPath = FileSystem.join(directory, "tokenizer.json")
        guard FileSystem.kind(of: tokenizerPath) != .missing else { return nil }
        let files = HuggingFaceFiles(
            directory: directory,
            tokenizer: try readJSONObject(tokenizerPath),
            tokenizerConfig: try readOptionalJSONObject(FileSystem.join(directory, "tokenizer_config.json")),
            specialTokensMap: try readOptionalJSONObject(FileSystem.join(directory, "special_tokens_map.json")),
            config: try readOptionalJSONObject(FileSystem.join(directory, "config.json")))
        return try files.ggufKeyValues(vocabularySize: vocabularySize)
    }

    /// Parses a JSON file whose top level must be an object.
    static func readJSONObject(_ path: String) throws -> JSONObject {
        let value: JSONValue
        do {
            value = try MappedFile(path: path).withBytes { try JSON.parse($0) }
        } catch let error as JSONError {
            throw TokenizerMetadataError(.malformed, path: path, field: "", "invalid JSON: \(error)")
        }
        guard case let .object(object) = value else {
            throw TokenizerMetadataError(.malformed, path: path, field: "", "expected a JSON object at the top level, found a \(value.typeName)")
        }
        return object
    }

    static func readOptionalJSONObject(_ path: String) throws -> JSONObject? {
        FileSystem.kind(of: path) == .missing ? nil : try readJSONObject(path)
    }

    static func readOptionalText(_ path: String) throws -> String? {
        guard FileSystem.kind(of: path) == .file else { return nil }
        return try MappedFile(path: path).withBytes { String(decoding: $0, as: UTF8.self) }
    }
}

extension TokenizerMetadata {
    /// The parsed files of one Hugging Face tokenizer; `ggufKeyValues` does the conversion.
    struct HuggingFaceFiles {
        typealias Error = TokenizerMetadataError
        let directory: String
        let tokenizer: JSONObject
        let tokenizerConfig: JSONObject?
        let specialTokensMap: JSONObject?
        let config: JSONObject?

        var tokenizerPath: String { FileSystem.join(directory, "tokenizer.json") }
        var configPath: String { FileSystem.join(directory, "config.json") }

        /// An added token as tokenizer.json lists it.
        struct AddedTokenEntry {
            let id: Int
            let content: String
            let special: Bool
        }

        func ggufKeyValues(vocabularySize requestedSize: Int?) throws -> [GGUFKeyValue] {
            let model = try bpeModel()
            let family = try preTokenizerFamily()
            let vocabulary = try self.vocabulary(model)
            let added = try addedTokens()

            var tokenByID: [Int: String] = [:]
            for (token, id) in vocabulary {
                if let other = tokenByID.updateValue(token, forKey: id) {
                    throw Error(.malformed, path: tokenizerPath, field: "model.vocab",
                                "id \(id) is given to both \(quoted(other)) and \(quoted(token))")
                }
            }
            var addedByID: [Int: AddedTokenEntry] = [:]
            for token in added {
                addedByID[token.id] = token
                tokenByID[token.id] = token.content
            }
            let largestID = tokenByID.keys.max() ?? -1
            let largestField = addedByID[largestID] != nil ? "added_tokens" : "model.vocab"
            let size = try vocabularySize(requested: requestedSize, largestID: largestID, field: largestField)
            // Far above any real vocabulary (262,144 for Gemma 3); refuses a size typo before allocating.
            guard size <= 1 << 24 else {
                throw Error(.malformed, path: requestedSize == nil ? configPath : tokenizerPath, field: "vocab_size",
                            "\(size) tokens is beyond any byte-level BPE vocabulary (at most \(1 << 24) accepted)")
            }

            var tokens: [GGUFValue] = []
            var types: [GGUFValue] = []
            tokens.reserveCapacity(size)
            types.reserveCapacity(size)
            for id in 0..<size {
                guard var token = tokenByID[id] else {
                    tokens.append(.string(TokenizerMetadata.placeholderToken(id: id)))
                    types.append(.int32(TokenizerMetadata.TokenType.unused.rawValue))
                    continue
                }
                let type: TokenizerMetadata.TokenType
                if let addedToken = addedByID[id] {
                    if addedToken.special || TokenizerMetadata.looksSpecial(token) {
                        type = .control
                    } else {
                        // gguf-py pre-normalizes SentencePiece spaces in user-defined tokens.
                        token = token.replacing("\u{2581}", with: " ")
                        type = .userDefined
                    }
                } else {
                    type = .normal
                }
                tokens.append(.string(token))
                types.append(.int32(type.rawValue))
            }

            var entries: [GGUFKeyValue] = []
            if let addPrefixSpace = tokenizerConfig?["add_prefix_space"]?.boolValue {
                entries.append(GGUFKeyValue(TokenizerMetadata.Key.addSpacePrefix, .bool(addPrefixSpace)))
            }
            entries.append(GGUFKeyValue(TokenizerMetadata.Key.model, .string("gpt2")))
            entries.append(GGUFKeyValue(TokenizerMetadata.Key.pre, .string(family.ggufName)))
            entries.append(GGUFKeyValue(TokenizerMetadata.Key.tokens, .array(elementType: .string, values: tokens)))
            entries.append(GGUFKeyValue(TokenizerMetadata.Key.tokenType, .array(elementType: .int32, values: types)))
            let merges = try self.merges(model)
            if !merges.isEmpty {
                entries.append(GGUFKeyValue(TokenizerMetadata.Key.merges, .strings(merges)))
            }

            var postProcessing = try postProcessorFlags()
            let special = try specialTokenIDs(added: added, vocabulary: vocabulary, size: size,
                                              templateFirst: postProcessing.templateFirst, templateLast: postProcessing.templateLast)
            for (role, id) in special.ids {
                entries.append(GGUFKeyValue(role.idKey, .uint32(UInt32(id))))
            }
            postProcessing.resolve(bos: special.contents[.bos], cls: special.cls, eos: special.contents[.eos])
            for role in [TokenizerMetadata.SpecialToken.bos, .eos, .sep] where postProcessing.flags[role] == nil {
                if let value = tokenizerConfig?["add_\(role.rawValue)_token"]?.boolValue {
                    postProcessing.set(role, value)
                }
            }
            for (role, value) in postProcessing.ordered {
                entries.append(GGUFKeyValue(TokenizerMetadata.Key.add(role), .bool(value)))
            }
            entries += try chatTemplateEntries()
            return entries
        }

        // MARK: model

        /// `model`, checked to be a byte-level-compatible BPE.
        func bpeModel() throws -> JSONObject {
            guard case let .object(model)? = tokenizer["model"] else {
                throw Error(.malformed, path: tokenizerPath, field: "model", "missing or not an object")
            }
            let type = model["type"]?.stringValue ?? (model["merges"] != nil ? "BPE" : "(none)")
            guard type == "BPE" else {
                throw Error(.unsupported, path: tokenizerPath, field: "model.type",
                            "is \(quoted(type)); GGUF export supports byte-level BPE tokenizers only (tokenizer.ggml.model \"gpt2\": GPT-2, SmolLM/SmolLM2, Llama 3, Qwen2)")
            }
            if model["byte_fallback"]?.boolValue == true {
                throw Error(.unsupported, path: tokenizerPath, field: "model.byte_fallback",
                            "is true: this is a SentencePiece-style BPE (GGUF tokenizer.ggml.model \"llama\"); GGUF export supports byte-level BPE only")
            }
            for member in ["continuing_subword_prefix", "end_of_word_suffix"] {
                if let affix = model[member]?.stringValue, !affix.isEmpty {
                    throw Error(.unsupported, path: tokenizerPath, field: "model.\(member)",
                                "is \(quoted(affix)); llama.cpp's BPE has no subword affixes, so GGUF export supports plain byte-level BPE only")
                }
            }
            return model
        }

        func preTokenizerFamily() throws -> TokenizerMetadata.PreTokenizerFamily {
            let value = tokenizer["pre_tokenizer"]
            guard let family = TokenizerMetadata.PreTokenizerFamily(preTokenizer: value) else {
                throw Error(.unsupported, path: tokenizerPath, field: "pre_tokenizer",
                            "\(TokenizerMetadata.describePreTokenizer(value)) is not a byte-level pre-tokenizer GGUF export knows; it knows ByteLevel with the GPT-2 regex (gpt-2), Digits(individual_digits) + ByteLevel (smollm), and Split with the Llama 3 or Qwen2 regex + ByteLevel (llama-bpe, qwen2)")
            }
            return family
        }

        /// `model.vocab` as (token, id) pairs in file order.
        func vocabulary(_ model: JSONObject) throws -> [(token: String, id: Int)] {
            guard case let .object(vocab)? = model["vocab"] else {
                throw Error(.malformed, path: tokenizerPath, field: "model.vocab", "missing or not an object of token → id")
            }
            var result: [(token: String, id: Int)] = []
            result.reserveCapacity(vocab.count)
            for (token, value) in vocab {
                guard let id = value.intValue, id >= 0, UInt32(exactly: id) != nil else {
                    throw Error(.malformed, path: tokenizerPath, field: "model.vocab[\(quoted(token))]",
                                "expected a token id (an integer 0…4294967295), found \(describe(value))")
                }
                result.append((token, id))
            }
            return result
        }

        func addedTokens() throws -> [AddedTokenEntry] {
            guard let list = tokenizer["added_tokens"], !list.isNull else { return [] }
            guard let entries = list.arrayValue else {
                throw Error(.malformed, path: tokenizerPath, field: "added_tokens", "expected an array, found a \(list.typeName)")
            }
            return try entries.enumerated().map { index, entry in
                guard let id = entry["id"]?.intValue, id >= 0, UInt32(exactly: id) != nil,
                      let content = entry["content"]?.stringValue else {
                    throw Error(.malformed, path: tokenizerPath, field: "added_tokens[\(index)]",
                                "expected an object with an integer \"id\" and a string \"content\"")
                }
                return AddedTokenEntry(id: id, content: content, special: entry["special"]?.boolValue ?? false)
            }
        }

        func vocabularySize(requested: Int?, largestID: Int, field: String) throws -> Int {
            if let requested {
                guard requested > largestID else {
                    throw Error(.malformed, path: tokenizerPath, field: field,
                                "holds id \(largestID), which does not fit the model's vocabulary of \(requested) tokens")
                }
                return requested
            }
            let configured = config?["vocab_size"] ?? config?["text_config"]?["vocab_size"]
            if let configured, !configured.isNull {
                guard let size = configured.intValue, size > 0 else {
                    throw Error(.malformed, path: configPath, field: "vocab_size", "expected a positive integer, found \(describe(configured))")
                }
                guard size > largestID else {
                    throw Error(.malformed, path: configPath, field: "vocab_size",
                                "is \(size), but tokenizer.json holds id \(largestID)")
                }
                return size
            }
            return largestID + 1
        }

        /// `model.merges` as `"a b"` strings. Legacy files store that string; newer ones a pair,
        /// which gguf-py joins after spelling a space inside a part as U+0120 (formats.md §5.2).
        func merges(_ model: JSONObject) throws -> [String] {
            guard let value = model["merges"], !value.isNull else { return [] }
            guard let list = value.arrayValue else {
                throw Error(.malformed, path: tokenizerPath, field: "model.merges", "expected an array, found a \(value.typeName)")
            }
            var result: [String] = []
            result.reserveCapacity(list.count)
            for (rank, merge) in list.enumerated() {
                if let text = merge.stringValue {
                    result.append(text)
                } else if let pair = merge.arrayValue, pair.count == 2, let left = pair[0].stringValue, let right = pair[1].stringValue {
                    func escaped(_ part: String) -> String { part.replacing(" ", with: "\u{0120}") }
                    result.append(escaped(left) + " " + escaped(right))
                } else {
                    throw Error(.malformed, path: tokenizerPath, field: "model.merges[\(rank)]",
                                "expected \"a b\" or [\"a\", \"b\"], found \(describe(merge))")
                }
            }
            return result
        }

        // MARK: special tokens

        /// What the post-processor says about adding BOS/EOS/SEP (gguf-py `SpecialVocab`):
        /// ByteLevel adds nothing; RobertaProcessing adds BOS, EOS and SEP; a TemplateProcessing
        /// `single` template of more than one piece adds its leading special token as BOS (when it
        /// is the BOS or CLS token) and its trailing one as EOS (when it is the EOS token).
        struct PostProcessorFlags {
            var flags: [TokenizerMetadata.SpecialToken: Bool] = [:]
            var order: [TokenizerMetadata.SpecialToken] = []
            /// Token contents of TemplateProcessing's leading / trailing special token.
            var templateFirst: String?
            var templateLast: String?

            mutating func set(_ role: TokenizerMetadata.SpecialToken, _ value: Bool) {
                if flags.updateValue(value, forKey: role) == nil { order.append(role) }
            }

            mutating func setDefault(_ role: TokenizerMetadata.SpecialToken, _ value: Bool) {
                if flags[role] == nil { set(role, value) }
            }

            /// Decides the template flags once the BOS/CLS/EOS contents are known.
            mutating func resolve(bos: String?, cls: String?, eos: String?) {
                if let first = templateFirst { set(.bos, first == bos || first == cls) }
                if let last = templateLast { set(.eos, last == eos) }
            }

            var ordered: [(TokenizerMetadata.SpecialToken, Bool)] { order.map { ($0, flags[$0]!) } }
        }

        func postProcessorFlags() throws -> PostProcessorFlags {
            var result = PostProcessorFlags()
            guard let processor = tokenizer["post_processor"], case .object = processor else { return result }
            let processors = processor["type"]?.stringValue == "Sequence" ? processor["processors"]?.arrayValue ?? [] : [processor]
            for step in processors {
                switch step["type"]?.stringValue {
                case "ByteLevel"?:
                    result.setDefault(.bos, false)
                    result.setDefault(.eos, false)
                case "RobertaProcessing"?:
                    result.set(.bos, true)
                    result.set(.eos, true)
                    result.set(.sep, true)
                case "TemplateProcessing"?:
                    let single = step["single"]?.arrayValue ?? []
                    guard single.count > 1 else { continue }
                    result.templateFirst = single.first?["SpecialToken"]?["id"]?.stringValue
                    result.templateLast = single.last?["SpecialToken"]?["id"]?.stringValue
                default:
                    continue
                }
            }
            return result
        }

        /// Special-token ids, gguf-py's way: tokenizer_config's `<role>_token` first (with
        /// special_tokens_map.json filling gaps, as transformers does; BOS falls back to CLS and
        /// EOS to SEP, then to TemplateProcessing's leading / trailing token), its content looked up
        /// among the added tokens and then in the vocabulary; config.json `<role>_token_id` for
        /// roles still unknown. Ids outside the vocabulary are skipped.
        func specialTokenIDs(added: [AddedTokenEntry], vocabulary: [(token: String, id: Int)], size: Int,
                             templateFirst: String?, templateLast: String?)
            throws -> (ids: [(TokenizerMetadata.SpecialToken, Int)], contents: [TokenizerMetadata.SpecialToken: String], cls: String?) {
            func content(_ key: String) -> String? {
                for source in [tokenizerConfig, specialTokensMap] {
                    guard let value = source?[key] else { continue }
                    if let text = value.stringValue { return text }
                    if let text = value["content"]?.stringValue { return text }
                }
                return nil
            }
            var contents: [TokenizerMetadata.SpecialToken: String] = [:]
            for role in TokenizerMetadata.SpecialToken.allCases {
                if let text = content(role.configKey) { contents[role] = text }
            }
            let cls = content("cls_token")
            if contents[.bos] == nil { contents[.bos] = cls ?? templateFirst }
            if contents[.eos] == nil { contents[.eos] = content("sep_token") ?? templateLast }

            var addedIDByContent: [String: Int] = [:]
            for token in added where addedIDByContent[token.content] == nil { addedIDByContent[token.content] = token.id }
            var vocabularyIDByToken: [String: Int] = [:]
            let wanted = Set(contents.values)
            for (token, id) in vocabulary where wanted.contains(token) { vocabularyIDByToken[token] = id }

            var ids: [(TokenizerMetadata.SpecialToken, Int)] = []
            var found = Set<TokenizerMetadata.SpecialToken>()
            for role in TokenizerMetadata.SpecialToken.allCases {
                guard let text = contents[role], let id = addedIDByContent[text] ?? vocabularyIDByToken[text], id < size else { continue }
                ids.append((role, id))
                found.insert(role)
            }
            for role in TokenizerMetadata.SpecialToken.allCases where !found.contains(role) {
                guard let value = config?[role.rawValue + "_token_id"] ?? config?["text_config"]?[role.rawValue + "_token_id"],
                      let id = value.intValue else { continue }
                guard id >= 0 else {
                    throw Error(.malformed, path: configPath, field: role.rawValue + "_token_id", "is \(id); a token id cannot be negative")
                }
                guard id < size else { continue }
                ids.append((role, id))
            }
            return (ids, contents, cls)
        }

        // MARK: chat template

        /// tokenizer_config `chat_template` (a string, or a list of `{name, template}`), else
        /// chat_template.jinja (with additional_chat_templates/*.jinja as named ones), else
        /// chat_template.json's `chat_template`.
        func chatTemplateEntries() throws -> [GGUFKeyValue] {
            var value = tokenizerConfig?["chat_template"]
            if value == nil || value!.isNull {
                if let jinja = try TokenizerMetadata.readOptionalText(FileSystem.join(directory, "chat_template.jinja")) {
                    let extraDirectory = FileSystem.join(directory, "additional_chat_templates")
                    let extras = (FileSystem.contents(of: extraDirectory) ?? []).filter { $0.hasSuffix(".jinja") }.sorted()
                    if extras.isEmpty {
                        value = .string(jinja)
                    } else {
                        var list: [JSONValue] = [["name": "default", "template": .string(jinja)]]
                        for name in extras {
                            let text = try TokenizerMetadata.readOptionalText(FileSystem.join(extraDirectory, name)) ?? ""
                            list.append(["name": .string(String(name.dropLast(".jinja".count))), "template": .string(text)])
                        }
                        value = .array(list)
                    }
                } else if let json = try TokenizerMetadata.readOptionalJSONObject(FileSystem.join(directory, "chat_template.json")) {
                    value = json["chat_template"]
                }
            }
            guard let value, !value.isNull else { return [] }
            if let text = value.stringValue { return [GGUFKeyValue(TokenizerMetadata.Key.chatTemplate, .string(text))] }
            guard let list = value.arrayValue else {
                throw Error(.malformed, path: FileSystem.join(directory, "tokenizer_config.json"), field: "chat_template",
                            "expected a string or a list of {name, template}, found a \(value.typeName)")
            }
            var named: [GGUFKeyValue] = []
            var names: [String] = []
            var defaultTemplate: String?
            for choice in list {
                guard let template = choice["template"]?.stringValue else { continue }
                // Key segments stay ASCII letters, digits and `_`, as gguf-py makes them.
                let name = String((choice["name"]?.stringValue ?? "").map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
                if name.isEmpty { continue }
                if name == "default" {
                    defaultTemplate = template
                } else if !names.contains(name) {
                    names.append(name)
                    named.append(GGUFKeyValue(TokenizerMetadata.Key.chatTemplate(named: name), .string(template)))
                }
            }
            if !names.isEmpty { named.append(GGUFKeyValue(TokenizerMetadata.Key.chatTemplates, .strings(names))) }
            if let defaultTemplate { named.append(GGUFKeyValue(TokenizerMetadata.Key.chatTemplate, .string(defaultTemplate))) }
            return named
        }

        // MARK: messages

        func quoted(_ text: String) -> String {
            "\"" + (text.count > 60 ? String(text.prefix(60)) + "…" : text) + "\""
        }

        func describe(_ value: JSONValue) -> String {
            switch value {
            case let .string(text): return "the string " + quoted(text)
            case let .integer(number): return "\(number)"
            case let .number(number): return "\(number)"
            case let .bool(flag): return "\(flag)"
            default: return "a \(value.typeName)"
            }
        }
    }
}
