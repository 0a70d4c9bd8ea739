import JSON
import LoquatSupport

extension TokenizerMetadata {
    /// The Hugging Face tokenizer files for a GGUF whose `tokenizer.ggml.model` is `gpt2`
    /// (formats.md §9, "GGUF → HF safetensors", step 1): `tokenizer.json`,
    /// `tokenizer_config.json` and `special_tokens_map.json`, in that order, as UTF-8 JSON.
    ///
    /// tokenizer.json (formats.md §5.1–5.2):
    /// - `model`: BPE with `vocab` (every token by id, except the `[PAD<id>]` placeholders of
    ///   UNUSED ids) and `merges` (the GGUF `"a b"` strings, in rank order); `unk_token` null,
    ///   no `byte_fallback`, `ignore_merges` for Llama 3 (as llama.cpp does for `llama-bpe`);
    /// - `added_tokens`: the CONTROL tokens (`special: true`) and USER_DEFINED ones
    ///   (`special: false`), all matched on raw text (`normalized: false`) as llama.cpp does;
    /// - `pre_tokenizer` (and `normalizer`) of the `tokenizer.ggml.pre` family
    ///   (`PreTokenizerFamily`; for `smollm`: `Sequence[Digits(individual_digits),
    ///   ByteLevel(add_prefix_space false, trim_offsets true, use_regex true)]`);
    /// - `post_processor`: ByteLevel, followed by a TemplateProcessing that adds BOS / EOS when
    ///   `tokenizer.ggml.add_bos_token` / `add_eos_token` say so (absent `add_bos_token`: the
    ///   llama.cpp default of the family, on for Llama 3 only);
    /// - `decoder`: ByteLevel.
    ///
    /// tokenizer_config.json: `tokenizer_class` PreTrainedTokenizerFast (tokenizer.json is the
    /// whole definition), the `<role>_token` strings of the special ids, `add_bos_token` /
    /// `add_eos_token` / `add_prefix_space` when the GGUF has them, `added_tokens_decoder`,
    /// `additional_special_tokens` (CONTROL tokens without a role), `chat_template` (a list of
    /// `{name, template}` when the GGUF has named templates), `clean_up_tokenization_spaces`
    /// as llama.cpp decides it for the family, and `model_max_length` from
    /// `<architecture>.context_length` when present. special_tokens_map.json repeats the roles.
    ///
    /// Returns nil when the metadata has no `gpt2` tokenizer. Throws `TokenizerMetadataError`
    /// (`path` names the GGUF in messages) when `tokenizer.ggml.pre` is missing or has no
    /// tokenizer.json form, or the tokenizer keys are malformed.
    public static func huggingFaceFiles(fromGGUF metadata: GGUFMetadata, path: String = "<gguf>")
        throws -> [(name: String, bytes: [UInt8])]? {
        guard metadata[Key.model]?.string == "gpt2" else { return nil }
        let vocabulary = try GGUFVocabulary(metadata, path: path)
        return [
            (name: "tokenizer.json", bytes: try JSON.serialize(vocabulary.tokenizerJSON())),
            (name: "tokenizer_config.json", bytes: try JSON.serialize(vocabulary.tokenizerConfigJSON()) + [0x0A]),
            (name: "special_tokens_map.json", bytes: try JSON.serialize(vocabulary.specialTokensMapJSON()) + [0x0A]),
        ]
    }
}

extension TokenizerMetadata {
    /// The `gpt2` tokenizer keys of a GGUF, read and checked.
    struct GGUFVocabulary {
        typealias Error = TokenizerMetadataError
        typealias Key = TokenizerMetadata.Key
        typealias TokenType = TokenizerMetadata.TokenType
        typealias SpecialToken = TokenizerMetadata.SpecialToken

        let path: String
        let family: TokenizerMetadata.PreTokenizerFamily
        let tokens: [String]
        /// Raw `token_type` values (NORMAL when the key is absent).
        let types: [Int32]
        let merges: [String]
        /// Special ids in `SpecialToken` order, only those naming a token.
        let specialIDs: [(role: SpecialToken, id: Int)]
        let addBOS: Bool?
        let addEOS: Bool?
        let addSpacePrefix: Bool?
        /// The unnamed template and the named ones (`tokenizer.chat_template.<name>`).
        let chatTemplate: String?
        let namedChatTemplates: [(name: String, template: String)]
        let contextLength: Int?

        init(_ metadata: GGUFMetadata, path: String) throws {
            self.path = path
            guard let preValue = metadata[Key.pre] else {
                throw Error(.unsupported, path: path, field: Key.pre,
                            "is missing, so llama.cpp falls back to its generic split, which has no tokenizer.json form; Hugging Face export knows \(TokenizerMetadata.PreTokenizerFamily.acceptedGGUFNames.joined(separator: ", "))")
            }
            guard let preName = preValue.string else {
                throw Error(.malformed, path: path, field: Key.pre, "expected a STRING, found \(preValue.typeName)")
            }
            guard let family = TokenizerMetadata.PreTokenizerFamily(ggufName: preName) else {
                throw Error(.unsupported, path: path, field: Key.pre,
                            "\"\(preName)\" has no tokenizer.json form here; Hugging Face export knows \(TokenizerMetadata.PreTokenizerFamily.acceptedGGUFNames.joined(separator: ", "))")
            }
            self.family = family
            guard let tokenValue = metadata[Key.tokens] else { throw Error(.malformed, path: path, field: Key.tokens, "is missing") }
            guard let tokens = tokenValue.stringArray else {
                throw Error(.malformed, path: path, field: Key.tokens, "expected ARRAY[STRING], found \(tokenValue.typeName)")
            }
            self.tokens = tokens

            if let typeValue = metadata[Key.tokenType] {
                guard let elements = typeValue.array else {
                    throw Error(.malformed, path: path, field: Key.tokenType, "expected ARRAY[INT32], found \(typeValue.typeName)")
                }
                guard elements.count == tokens.count else {
                    throw Error(.malformed, path: path, field: Key.tokenType,
                                "has \(elements.count) entries for \(tokens.count) tokens")
                }
                types = try elements.map { element in
                    guard let value = element.integer, let narrow = Int32(exactly: value) else {
                        throw Error(.malformed, path: path, field: Key.tokenType, "expected ARRAY[INT32], found an element of type \(element.typeName)")
                    }
                    return narrow
                }
            } else {
                types = Array(repeating: TokenType.normal.rawValue, count: tokens.count)
            }

            if let mergeValue = metadata[Key.merges] {
                guard let merges = mergeValue.stringArray else {
                    throw Error(.malformed, path: path, field: Key.merges, "expected ARRAY[STRING], found \(mergeValue.typeName)")
                }
                // llama.cpp splits each merge at the first space after its first character.
                if let rank = merges.firstIndex(where: { merge in merge.dropFirst().firstIndex(of: " ") == nil }) {
                    throw Error(.malformed, path: path, field: "\(Key.merges)[\(rank)]", "\"\(merges[rank])\" is not two tokens separated by a space")
                }
                self.merges = merges
            } else {
                merges = []
            }

            // An id outside the vocabulary is ignored, as llama.cpp ignores it.
            specialIDs = SpecialToken.allCases.compactMap { role in
                guard let id = metadata[role.idKey]?.integer, id >= 0, id < tokens.count else { return nil }
                return (role, id)
            }
            func flag(_ key: String) throws -> Bool? {
                guard let value = metadata[key] else { return nil }
                guard let flag = value.bool else { throw Error(.malformed, path: path, field: key, "expected a BOOL, found \(value.typeName)") }
                return flag
            }
            addBOS = try flag(Key.add(.bos))
            addEOS = try flag(Key.add(.eos))
            addSpacePrefix = try flag(Key.addSpacePrefix)

            func text(_ key: String) throws -> String? {
                guard let value = metadata[key] else { return nil }
                guard let text = value.string else { throw Error(.malformed, path: path, field: key, "expected a STRING, found \(value.typeName)") }
                return text
            }
            chatTemplate = try text(Key.chatTemplate)
            var named: [(name: String, template: String)] = []
            for name in metadata[Key.chatTemplates]?.stringArray ?? [] {
                if let template = try text(Key.chatTemplate(named: name)) { named.append((name, template)) }
            }
            namedChatTemplates = named
            let architecture = metadata["general.architecture"]?.string ?? "llama"
            contextLength = metadata["\(architecture).context_length"]?.integer
        }

        func token(_ role: SpecialToken) -> (id: Int, content: String)? {
            specialIDs.first { $0.role == role }.map { ($0.id, tokens[$0.id]) }
        }

        func isAdded(_ id: Int) -> Bool {
            types[id] == TokenType.control.rawValue || types[id] == TokenType.userDefined.rawValue
        }

        func isPlaceholder(_ id: Int) -> Bool {
            types[id] == TokenType.unused.rawValue && tokens[id] == TokenizerMetadata.placeholderToken(id: id)
        }

        /// llama.cpp's default for a missing `add_bos_token` (on for the Llama 3 pre-tokenizer).
        var addsBOS: Bool { addBOS ?? (family == .llama3) }
        var addsEOS: Bool { addEOS ?? false }

        // MARK: tokenizer.json

        func tokenizerJSON() throws -> JSONValue {
            var vocabulary: [(key: String, value: JSONValue)] = []
            vocabulary.reserveCapacity(tokens.count)
            var firstID: [String: Int] = [:]
            var added: [JSONValue] = []
            for (id, token) in tokens.enumerated() where !isPlaceholder(id) {
                if let previous = firstID.updateValue(id, forKey: token) {
                    throw Error(.malformed, path: path, field: Key.tokens,
                                "the token \"\(token)\" appears at ids \(previous) and \(id); a tokenizer.json vocabulary needs distinct strings")
                }
                vocabulary.append((key: token, value: .int(id)))
                if isAdded(id) {
                    added.append(["id": .int(id), "content": .string(token), "single_word": false, "lstrip": false,
                                  "rstrip": false, "normalized": false, "special": .bool(types[id] == TokenType.control.rawValue)])
                }
            }
            let model: JSONValue = [
                "type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": .bool(family.ignoresMerges),
                "vocab": .object(JSONObject(vocabulary)), "merges": .strings(merges),
            ]
            return [
                "version": "1.0", "truncation": nil, "padding": nil, "added_tokens": .array(added),
                "normalizer": family.normalizerJSON, "pre_tokenizer": family.preTokenizerJSON,
                "post_processor": postProcessorJSON(),
                "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
                "model": model,
            ]
        }

        /// ByteLevel (offsets only), then BOS / EOS through TemplateProcessing when they are added
        /// (formats.md §5.2, "Post-processors").
        func postProcessorJSON() -> JSONValue {
            let byteLevel: JSONValue = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true]
            let bos = addsBOS ? token(.bos) : nil
            let eos = addsEOS ? token(.eos) : nil
            guard bos != nil || eos != nil else { return byteLevel }
            func special(_ token: (id: Int, content: String)?, _ typeID: Int) -> [JSONValue] {
                token.map { [["SpecialToken": ["id": .string($0.content), "type_id": .int(typeID)]]] } ?? []
            }
            func sequence(_ name: String, _ typeID: Int) -> JSONValue { ["Sequence": ["id": .string(name), "type_id": .int(typeID)]] }
            let single = special(bos, 0) + [sequence("A", 0)] + special(eos, 0)
            let pair = single + special(bos, 1) + [sequence("B", 1)] + special(eos, 1)
            var specialTokens: [(key: String, value: JSONValue)] = []
            for token in [bos, eos].compactMap({ $0 }) where !specialTokens.contains(where: { $0.key == token.content }) {
                specialTokens.append((key: token.content, value: ["id": .string(token.content), "ids": .ints([token.id]),
                                                                  "tokens": .strings([token.content])]))
            }
            let template: JSONValue = ["type": "TemplateProcessing", "single": .array(single), "pair": .array(pair),
                                       "special_tokens": .object(JSONObject(specialTokens))]
            return ["type": "Sequence", "processors": [byteLevel, template]]
        }

        // MARK: tokenizer_config.json, special_tokens_map.json

        /// CONTROL tokens that fill no role, in id order.
        var additionalSpecialTokens: [String] {
            let roleIDs = Set(specialIDs.map(\.id))
            return tokens.indices.filter { types[$0] == TokenType.control.rawValue && !roleIDs.contains($0) }.map { tokens[$0] }
        }

        func tokenizerConfigJSON() -> JSONValue {
            var entries: [(key: String, value: JSONValue)] = []
            if let addBOS { entries.append((key: "add_bos_token", value: .bool(addBOS))) }
            if let addEOS { entries.append((key: "add_eos_token", value: .bool(addEOS))) }
            if let addSpacePrefix { entries.append((key: "add_prefix_space", value: .bool(addSpacePrefix))) }
            var decoder: [(key: String, value: JSONValue)] = []
            for id in tokens.indices where isAdded(id) {
                decoder.append((key: String(id), value: [
                    "content": .string(tokens[id]), "lstrip": false, "normalized": false, "rstrip": false,
                    "single_word": false, "special": .bool(types[id] == TokenType.control.rawValue)]))
            }
            entries.append((key: "added_tokens_decoder", value: .object(JSONObject(decoder))))
            let additional = additionalSpecialTokens
            if !additional.isEmpty { entries.append((key: "additional_special_tokens", value: .strings(additional))) }
            for (role, id) in specialIDs { entries.append((key: role.configKey, value: .string(tokens[id]))) }
            if !namedChatTemplates.isEmpty {
                var list: [JSONValue] = []
                if let chatTemplate { list.append(["name": "default", "template": .string(chatTemplate)]) }
                for (name, template) in namedChatTemplates { list.append(["name": .string(name), "template": .string(template)]) }
                entries.append((key: "chat_template", value: .array(list)))
            } else if let chatTemplate {
                entries.append((key: "chat_template", value: .string(chatTemplate)))
            }
            entries.append((key: "clean_up_tokenization_spaces", value: .bool(family.cleansUpTokenizationSpaces)))
            if let contextLength { entries.append((key: "model_max_length", value: .int(contextLength))) }
            entries.append((key: "tokenizer_class", value: "PreTrainedTokenizerFast"))
            // transformers writes this file with sorted keys.
            return .object(JSONObject(entries.sorted { $0.key < $1.key }))
        }

        func specialTokensMapJSON() -> JSONValue {
            var entries: [(key: String, value: JSONValue)] = []
            let additional = additionalSpecialTokens
            if !additional.isEmpty { entries.append((key: "additional_special_tokens", value: .strings(additional))) }
            for (role, id) in specialIDs {
                entries.append((key: role.configKey, value: [
                    "content": .string(tokens[id]), "lstrip": false, "normalized": false, "rstrip": false, "single_word": false]))
            }
            return .object(JSONObject(entries.sorted { $0.key < $1.key }))
        }
    }
}
