import Foundation
import XCTest
import JSON
import LoquatSupport
import Checkpoints
import TestSupport

/// `TokenizerMetadata`: HF tokenizer files ⇄ GGUF `tokenizer.*` keys for byte-level BPE
/// (formats.md §2.8, §5, §9).
///
/// - Synthetic directories pin the exact keys, types and values gguf-py's converter writes.
/// - Fixtures/tokenizer/tiny-* are tokenizer.json files serialized by the PyPI `tokenizers`
///   package (Tests/Generators/tokenizer_metadata_goldens.py), so pre-tokenizer recognition is
///   tested on the real serialization of each family.
/// - With the SmolLM2 GGUF in the model cache: GGUF → HF → GGUF is the identity on the tokenizer
///   keys, the generated files have SmolLM2's structure, and the golden ids (llama.cpp's
///   tokenization of Fixtures/tokenizer/mixed-text.txt, which `tokenizers` reproduces with our
///   tokenizer.json) decode back to the text through our vocabulary.
final class TokenizerMetadataTests: XCTestCase {
    typealias Key = TokenizerMetadata.Key

    // MARK: helpers

    static func fixturePath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizer").appendingPathComponent(name).path
    }

    private func write(_ files: [String: JSONValue], into directory: String) throws {
        for (name, value) in files {
            try AtomicFileWriter.write(try JSON.serialize(value), to: FileSystem.join(directory, name), overwrite: true)
        }
    }

    private func write(_ files: [(name: String, bytes: [UInt8])], into directory: String) throws {
        for file in files { try AtomicFileWriter.write(file.bytes, to: FileSystem.join(directory, file.name), overwrite: true) }
    }

    private func parse(_ files: [(name: String, bytes: [UInt8])], _ name: String) throws -> JSONValue {
        let file = try XCTUnwrap(files.first { $0.name == name }, "\(name) missing")
        return try JSON.parse(file.bytes)
    }

    private func smolLM2Metadata() throws -> GGUFMetadata {
        guard let path = SampleModels.smolLM2GGUF else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf is not in \(SampleModels.cacheDirectory)")
        }
        return try GGUFFile(path: path).metadata
    }

    private func metadata(_ entries: [GGUFKeyValue]) throws -> GGUFMetadata { try GGUFMetadata(entries) }

    /// A byte-level BPE in SmolLM2's layout: 3 special added tokens, 1 non-special added token,
    /// merges as pairs (tokenizers ≥ 0.20) including one with a space inside a part.
    private func smallTokenizer(pre: JSONValue? = nil, postProcessor: JSONValue? = nil, model: JSONValue? = nil) -> JSONValue {
        let vocab: JSONValue = ["<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "a": 3, "b": 4, "Ġ": 5,
                                "ab": 6, "Ġab": 7, "c": 8, "<extra>": 10, "x y": 11]
        let bpe: JSONValue = model ?? ["type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
                                       "end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false,
                                       "ignore_merges": false, "vocab": vocab,
                                       "merges": [["a", "b"], ["Ġ", "ab"], ["x y", "c"]]]
        func added(_ id: Int64, _ content: String, special: Bool) -> JSONValue {
            ["id": .integer(id), "content": .string(content), "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": .bool(!special), "special": .bool(special)]
        }
        return ["version": "1.0", "truncation": nil, "padding": nil,
                "added_tokens": [added(0, "<|endoftext|>", special: true), added(1, "<|im_start|>", special: true),
                                 added(2, "<|im_end|>", special: true), added(10, "<extra>", special: false),
                                 added(12, "<|tool|>", special: false), added(13, "hello\u{2581}world", special: false)],
                "normalizer": nil,
                "pre_tokenizer": pre ?? TokenizerMetadata.PreTokenizerFamily.digitsThenGPT2.preTokenizerJSON,
                "post_processor": postProcessor ?? ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
                "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
                "model": bpe]
    }

    private func keys(_ files: [String: JSONValue], vocabularySize: Int? = nil) throws -> [GGUFKeyValue]? {
        let directory = makeTemporaryDirectory("loquat-tokenizer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write(files, into: directory)
        return try TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: directory, vocabularySize: vocabularySize)
    }

    private func error(_ body: () throws -> Any?, file: StaticString = #filePath, line: UInt = #line) -> TokenizerMetadataError? {
        do {
            _ = try body()
            XCTFail("expected a TokenizerMetadataError", file: file, line: line)
        } catch let error as TokenizerMetadataError {
            return error
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
        return nil
    }

    // MARK: HF → GGUF

    func testHuggingFaceDirectoryGivesTheConverterKeysAndTypes() throws {
        let entries = try XCTUnwrap(keys([
            "tokenizer.json": smallTokenizer(),
            "tokenizer_config.json": ["add_prefix_space": false, "add_bos_token": false, "bos_token": "<|im_start|>",
                                      "eos_token": ["content": "<|im_end|>", "lstrip": false],
                                      "unk_token": "<|endoftext|>", "chat_template": "{{ messages }}"],
            "special_tokens_map.json": ["pad_token": "<|im_end|>"],
            "config.json": ["vocab_size": 16, "bos_token_id": 1, "mask_token_id": 8],
        ]))
        let metadata = try metadata(entries)
        XCTAssertEqual(entries.map(\.key), [
            Key.addSpacePrefix, Key.model, Key.pre, Key.tokens, Key.tokenType, Key.merges,
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
            "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id",
            "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", Key.chatTemplate,
        ])
        XCTAssertEqual(metadata[Key.model], .string("gpt2"))
        XCTAssertEqual(metadata[Key.pre], .string("smollm"))
        XCTAssertEqual(metadata[Key.addSpacePrefix], .bool(false))
        XCTAssertEqual(metadata[Key.tokens], .strings([
            "<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "Ġ", "ab", "Ġab", "c", "[PAD9]", "<extra>", "x y",
            "<|tool|>", "hello world", "[PAD14]", "[PAD15]",
        ]))
        XCTAssertEqual(metadata[Key.tokenType], .array(elementType: .int32, values: [3, 3, 3, 1, 1, 1, 1, 1, 1, 5, 4, 1, 3, 4, 5, 5].map { .int32($0) }))
        XCTAssertEqual(metadata[Key.merges], .strings(["a b", "Ġ ab", "xĠy c"]))
        XCTAssertEqual(metadata["tokenizer.ggml.bos_token_id"], .uint32(1))
        XCTAssertEqual(metadata["tokenizer.ggml.eos_token_id"], .uint32(2))
        XCTAssertEqual(metadata["tokenizer.ggml.unknown_token_id"], .uint32(0))
        XCTAssertEqual(metadata["tokenizer.ggml.padding_token_id"], .uint32(2), "from special_tokens_map.json")
        XCTAssertEqual(metadata["tokenizer.ggml.mask_token_id"], .uint32(8), "from config.json")
        XCTAssertEqual(metadata["tokenizer.ggml.add_bos_token"], .bool(false))
        XCTAssertEqual(metadata["tokenizer.ggml.add_eos_token"], .bool(false))
        XCTAssertEqual(metadata[Key.chatTemplate], .string("{{ messages }}"))
    }

    func testVocabularySizeArgumentAndLegacyStringMerges() throws {
        var tokenizer = smallTokenizer().objectValue!
        var model = tokenizer["model"]!.objectValue!
        model["merges"] = ["a b", "Ġ ab"]
        tokenizer["model"] = .object(model)
        let metadata = try metadata(try XCTUnwrap(keys(["tokenizer.json": .object(tokenizer)], vocabularySize: 15)))
        XCTAssertEqual(metadata[Key.tokens]?.array?.count, 15)
        XCTAssertEqual(metadata[Key.merges], .strings(["a b", "Ġ ab"]))
        XCTAssertNil(metadata[Key.addSpacePrefix])
        XCTAssertNil(metadata[Key.chatTemplate])
        XCTAssertNil(metadata["tokenizer.ggml.bos_token_id"], "no tokenizer_config.json, no config.json")
        let tooSmall = error { try self.keys(["tokenizer.json": .object(tokenizer)], vocabularySize: 12) }
        XCTAssertEqual(tooSmall?.kind, .malformed)
        XCTAssertEqual(tooSmall?.field, "added_tokens", "id 13 is an added token's")
    }

    func testTemplateProcessingAddsBOSAndFindsItsToken() throws {
        let template: JSONValue = [
            "type": "TemplateProcessing",
            "single": [["SpecialToken": ["id": "<|im_start|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
            "pair": [["SpecialToken": ["id": "<|im_start|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                     ["SpecialToken": ["id": "<|im_start|>", "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
            "special_tokens": ["<|im_start|>": ["id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]]],
        ]
        let processor: JSONValue = ["type": "Sequence", "processors": [
            ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true], template]]
        let entries = try XCTUnwrap(keys([
            "tokenizer.json": smallTokenizer(pre: TokenizerMetadata.PreTokenizerFamily.llama3.preTokenizerJSON, postProcessor: processor),
            "tokenizer_config.json": ["add_bos_token": false, "eos_token": "<|im_end|>"],
        ]))
        let metadata = try metadata(entries)
        XCTAssertEqual(metadata[Key.pre], .string("llama-bpe"))
        XCTAssertEqual(metadata["tokenizer.ggml.bos_token_id"], .uint32(1), "BOS taken from the template")
        XCTAssertEqual(metadata["tokenizer.ggml.add_bos_token"], .bool(true), "the post-processor wins over tokenizer_config")
        XCTAssertEqual(metadata["tokenizer.ggml.add_eos_token"], .bool(false))
    }

    func testChatTemplateFromJinjaFileAndNamedTemplates() throws {
        let directory = makeTemporaryDirectory("loquat-tokenizer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write(["tokenizer.json": smallTokenizer()], into: directory)
        try AtomicFileWriter.write(Array("{{ jinja }}".utf8), to: FileSystem.join(directory, "chat_template.jinja"), overwrite: false)
        var metadata = try self.metadata(try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: directory)))
        XCTAssertEqual(metadata[Key.chatTemplate], .string("{{ jinja }}"))

        try write(["tokenizer_config.json": ["chat_template": [["name": "default", "template": "D"],
                                                               ["name": "tool use", "template": "T"]]]], into: directory)
        metadata = try self.metadata(try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: directory)))
        XCTAssertEqual(metadata[Key.chatTemplate], .string("D"))
        XCTAssertEqual(metadata["tokenizer.chat_template.tool_use"], .string("T"))
        XCTAssertEqual(metadata[Key.chatTemplates], .strings(["tool_use"]))
    }

    func testNoTokenizerJSONGivesNil() throws {
        XCTAssertNil(try keys(["config.json": ["vocab_size": 10]]))
    }

    func testUnconvertibleTokenizersAreRefusedNamingFileAndField() throws {
        let wordPiece: JSONValue = ["type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                                    "max_input_chars_per_word": 100, "vocab": ["[UNK]": 0, "a": 1]]
        var failure = error { try self.keys(["tokenizer.json": self.smallTokenizer(model: wordPiece)]) }
        XCTAssertEqual(failure?.kind, .unsupported)
        XCTAssertEqual(failure?.field, "model.type")
        XCTAssertTrue(failure?.path.hasSuffix("/tokenizer.json") ?? false)
        XCTAssertTrue(failure?.description.contains("byte-level BPE") ?? false, failure?.description ?? "")

        let unigram: JSONValue = ["type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]]]
        failure = error { try self.keys(["tokenizer.json": self.smallTokenizer(model: unigram)]) }
        XCTAssertEqual(failure?.field, "model.type")

        let sentencePieceBPE: JSONValue = ["type": "BPE", "byte_fallback": true, "vocab": ["<unk>": 0], "merges": []]
        failure = error { try self.keys(["tokenizer.json": self.smallTokenizer(model: sentencePieceBPE)]) }
        XCTAssertEqual(failure?.field, "model.byte_fallback")

        let metaspace: JSONValue = ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false]
        failure = error { try self.keys(["tokenizer.json": self.smallTokenizer(pre: metaspace)]) }
        XCTAssertEqual(failure?.kind, .unsupported)
        XCTAssertEqual(failure?.field, "pre_tokenizer")
        XCTAssertTrue(failure?.description.contains("Metaspace") ?? false)

        let prefixed: JSONValue = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
        failure = error { try self.keys(["tokenizer.json": self.smallTokenizer(pre: prefixed)]) }
        XCTAssertEqual(failure?.field, "pre_tokenizer")

        var badMerges = smallTokenizer().objectValue!
        var model = badMerges["model"]!.objectValue!
        model["merges"] = [["a", "b", "c"]]
        badMerges["model"] = .object(model)
        failure = error { try self.keys(["tokenizer.json": .object(badMerges)]) }
        XCTAssertEqual(failure?.kind, .malformed)
        XCTAssertEqual(failure?.field, "model.merges[0]")

        failure = error { try self.keys(["tokenizer.json": ["model", "not", "an", "object"]]) }
        XCTAssertEqual(failure?.kind, .malformed)
    }

    /// tokenizer.json files as the `tokenizers` package serializes each family.
    func testPreTokenizerRecognitionOnTokenizersSerializations() throws {
        let expected = ["tiny-gpt2": "gpt-2", "tiny-smollm": "smollm", "tiny-llama3": "llama-bpe", "tiny-qwen2": "qwen2"]
        for (directory, pre) in expected {
            let metadata = try metadata(try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: Self.fixturePath(directory))))
            XCTAssertEqual(metadata[Key.pre], .string(pre), directory)
            XCTAssertEqual(metadata[Key.model], .string("gpt2"), directory)
            XCTAssertGreaterThan(metadata[Key.merges]?.array?.count ?? 0, 0, directory)
        }
        let llama3 = try metadata(try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: Self.fixturePath("tiny-llama3"))))
        XCTAssertEqual(llama3["tokenizer.ggml.add_bos_token"], .bool(true))
        XCTAssertEqual(llama3["tokenizer.ggml.bos_token_id"], .uint32(llama3[Key.tokens]!.stringArray!.firstIndex(of: "<|begin_of_text|>").map(UInt32.init)!))
        let failure = error { try TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: Self.fixturePath("tiny-wordpiece")) }
        XCTAssertEqual(failure?.kind, .unsupported)
        XCTAssertEqual(failure?.field, "model.type")
    }

    // MARK: GGUF → HF

    func testGGUFWithoutGPT2TokenizerGivesNil() throws {
        XCTAssertNil(try TokenizerMetadata.huggingFaceFiles(fromGGUF: metadata([GGUFKeyValue("general.architecture", .string("llama"))])))
        XCTAssertNil(try TokenizerMetadata.huggingFaceFiles(fromGGUF: metadata([GGUFKeyValue(Key.model, .string("llama"))])))
    }

    func testGGUFPreTokenizerWithoutTokenizerJSONFormIsRefused() throws {
        let base = [GGUFKeyValue(Key.model, .string("gpt2")), GGUFKeyValue(Key.tokens, .strings(["a"]))]
        var failure = error { try TokenizerMetadata.huggingFaceFiles(fromGGUF: self.metadata(base + [GGUFKeyValue(Key.pre, .string("deepseek-llm"))]), path: "m.gguf") }
        XCTAssertEqual(failure?.kind, .unsupported)
        XCTAssertEqual(failure?.field, Key.pre)
        XCTAssertEqual(failure?.path, "m.gguf")
        failure = error { try TokenizerMetadata.huggingFaceFiles(fromGGUF: self.metadata(base)) }
        XCTAssertEqual(failure?.field, Key.pre)
        failure = error {
            try TokenizerMetadata.huggingFaceFiles(fromGGUF: self.metadata(base + [GGUFKeyValue(Key.pre, .string("gpt-2")),
                                                                                   GGUFKeyValue(Key.tokenType, .array(elementType: .int32, values: []))]))
        }
        XCTAssertEqual(failure?.kind, .malformed)
        XCTAssertEqual(failure?.field, Key.tokenType)
    }

    /// Llama 3 layout: BOS added by default (llama.cpp's default for llama-bpe), so the files
    /// carry a TemplateProcessing; holes stay holes; user-defined tokens are added, not special.
    func testSyntheticGGUFRoundTripWithBOSTemplateAndHoles() throws {
        let tokens = ["a", "b", "ab", "Ġ", "Ġab", "[PAD5]", "<|begin_of_text|>", "<|end_of_text|>", "<tool>"]
        let original: [GGUFKeyValue] = [
            GGUFKeyValue(Key.model, .string("gpt2")),
            GGUFKeyValue(Key.pre, .string("llama3")),
            GGUFKeyValue(Key.tokens, .strings(tokens)),
            GGUFKeyValue(Key.tokenType, .array(elementType: .int32, values: [1, 1, 1, 1, 1, 5, 3, 3, 4].map { .int32($0) })),
            GGUFKeyValue(Key.merges, .strings(["a b", "Ġ ab"])),
            GGUFKeyValue("tokenizer.ggml.bos_token_id", .uint32(6)),
            GGUFKeyValue("tokenizer.ggml.eos_token_id", .uint32(7)),
            GGUFKeyValue("tokenizer.ggml.padding_token_id", .uint32(99)),
            GGUFKeyValue(Key.chatTemplate, .string("{{ bos_token }}")),
            GGUFKeyValue("general.architecture", .string("llama")),
            GGUFKeyValue("llama.context_length", .uint32(2048)),
        ]
        let originalMetadata = try metadata(original)
        let files = try XCTUnwrap(TokenizerMetadata.huggingFaceFiles(fromGGUF: originalMetadata))
        XCTAssertEqual(files.map(\.name), ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        let tokenizer = try parse(files, "tokenizer.json")
        XCTAssertEqual(tokenizer["model"]?["ignore_merges"], .bool(true))
        XCTAssertNil(tokenizer["model"]?["vocab"]?["[PAD5]"], "placeholders are not tokens")
        XCTAssertEqual(tokenizer["model"]?["vocab"]?.objectValue?.count, 8)
        XCTAssertEqual(tokenizer["post_processor"]?["processors"]?.arrayValue?.last?["single"],
                       [["SpecialToken": ["id": "<|begin_of_text|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]])
        XCTAssertEqual(tokenizer["added_tokens"]?.arrayValue?.map { $0["special"] }, [.bool(true), .bool(true), .bool(false)])
        let config = try parse(files, "tokenizer_config.json")
        XCTAssertEqual(config["bos_token"], "<|begin_of_text|>")
        XCTAssertEqual(config["eos_token"], "<|end_of_text|>")
        XCTAssertNil(config["pad_token"], "an id outside the vocabulary is dropped, as llama.cpp ignores it")
        XCTAssertEqual(config["model_max_length"], 2048)
        XCTAssertEqual(config["clean_up_tokenization_spaces"], true)

        let directory = makeTemporaryDirectory("loquat-tokenizer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write(files, into: directory)
        let back = try metadata(try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: directory, vocabularySize: 9)))
        for key in [Key.model, Key.tokens, Key.tokenType, Key.merges, "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", Key.chatTemplate] {
            XCTAssertEqual(back[key], originalMetadata[key], key)
        }
        XCTAssertEqual(back[Key.pre], .string("llama-bpe"), "the alias comes back as the family's canonical id")
        XCTAssertEqual(back["tokenizer.ggml.add_bos_token"], .bool(true))
        XCTAssertNil(back["tokenizer.ggml.padding_token_id"])
    }

    // MARK: LoadedCheckpoint

    func testLoadedCheckpointConvertsOnlyInTheDirectionItNeeds() throws {
        let directory = makeTemporaryDirectory("loquat-tokenizer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write(["tokenizer.json": smallTokenizer()], into: directory)
        let huggingFace = LoadedCheckpoint(format: .safetensors, path: directory, sourceFiles: [], architecture: "llama",
                                           tensors: [], config: nil)
        let keys = try XCTUnwrap(huggingFace.tokenizerGGUFKeyValues(vocabularySize: 20))
        XCTAssertEqual(try metadata(keys)[Key.tokens]?.array?.count, 20)
        XCTAssertNil(try huggingFace.tokenizerHuggingFaceFiles())
        let lone = LoadedCheckpoint(format: .safetensors, path: FileSystem.join(directory, "model.safetensors"), sourceFiles: [],
                                    architecture: "llama", tensors: [], config: nil)
        XCTAssertNotNil(try lone.tokenizerGGUFKeyValues(vocabularySize: nil), "the directory of a lone .safetensors file")

        let gguf = LoadedCheckpoint(format: .gguf, path: "m.gguf", sourceFiles: [], architecture: "llama", tensors: [], config: nil,
                                    ggufMetadata: keys)
        XCTAssertNil(try gguf.tokenizerGGUFKeyValues(vocabularySize: 20), "a GGUF source carries its own keys")
        let files = try XCTUnwrap(gguf.tokenizerHuggingFaceFiles())
        XCTAssertEqual(files.map(\.name), ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        let withoutTokenizer = LoadedCheckpoint(format: .gguf, path: "m.gguf", sourceFiles: [], architecture: "llama",
                                                tensors: [], config: nil, ggufMetadata: [])
        XCTAssertNil(try withoutTokenizer.tokenizerHuggingFaceFiles())
    }

    // MARK: real SmolLM2

    /// The round trip on SmolLM2-135M-Instruct: tokens, types, merges, special ids, pre,
    /// add_bos / add_space_prefix and the chat template come back identical.
    func testSmolLM2GGUFToHuggingFaceAndBackIsTheIdentity() throws {
        let original = try smolLM2Metadata()
        let files = try XCTUnwrap(TokenizerMetadata.huggingFaceFiles(fromGGUF: original, path: "SmolLM2.gguf"))
        let directory = makeTemporaryDirectory("loquat-tokenizer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write(files, into: directory)
        let entries = try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: directory))
        let back = try metadata(entries)
        let compared = [Key.model, Key.pre, Key.tokens, Key.tokenType, Key.merges, "tokenizer.ggml.bos_token_id",
                        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                        "tokenizer.ggml.add_bos_token", Key.addSpacePrefix, Key.chatTemplate]
        for key in compared {
            XCTAssertNotNil(original[key], key)
            XCTAssertEqual(back[key], original[key], key)
        }
        let originalTokenizerKeys = Set(original.keys.filter { $0.hasPrefix("tokenizer.") })
        XCTAssertEqual(originalTokenizerKeys.subtracting(back.keys), [])
        XCTAssertEqual(Set(back.keys).subtracting(originalTokenizerKeys), ["tokenizer.ggml.add_eos_token"],
                       "gguf-py records add_eos_token = false for a ByteLevel post-processor")
        XCTAssertEqual(back["tokenizer.ggml.add_eos_token"], .bool(false))
    }

    /// Structure of the files made from SmolLM2's GGUF (the real SmolLM2 tokenizer.json layout,
    /// formats.md §5.2).
    func testSmolLM2HuggingFaceFilesStructure() throws {
        let files = try XCTUnwrap(TokenizerMetadata.huggingFaceFiles(fromGGUF: try smolLM2Metadata()))
        let tokenizer = try parse(files, "tokenizer.json")
        XCTAssertEqual(tokenizer.objectValue?.keys, ["version", "truncation", "padding", "added_tokens", "normalizer",
                                                     "pre_tokenizer", "post_processor", "decoder", "model"])
        XCTAssertEqual(tokenizer["pre_tokenizer"], ["type": "Sequence", "pretokenizers": [
            ["type": "Digits", "individual_digits": true],
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]]])
        XCTAssertEqual(tokenizer["normalizer"], .null)
        XCTAssertEqual(tokenizer["post_processor"], ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true])
        XCTAssertEqual(tokenizer["decoder"], ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true])
        let model = try XCTUnwrap(tokenizer["model"]?.objectValue)
        XCTAssertEqual(model["type"], "BPE")
        XCTAssertEqual(model["unk_token"], .null)
        XCTAssertEqual(model["byte_fallback"], false)
        XCTAssertEqual(model["ignore_merges"], false)
        XCTAssertEqual(model["vocab"]?.objectValue?.count, 49152)
        XCTAssertEqual(model["vocab"]?["<|endoftext|>"], 0)
        XCTAssertEqual(model["vocab"]?["Ġthe"]?.intValue.map { $0 > 17 }, true)
        XCTAssertEqual(model["merges"]?.arrayValue?.count, 48900)
        XCTAssertEqual(model["merges"]?.arrayValue?.first, "Ġ t")
        let added = try XCTUnwrap(tokenizer["added_tokens"]?.arrayValue)
        XCTAssertEqual(added.count, 17)
        XCTAssertEqual(added.compactMap { $0["id"]?.intValue }, Array(0..<17))
        XCTAssertEqual(added[1], ["id": 1, "content": "<|im_start|>", "single_word": false, "lstrip": false, "rstrip": false,
                                  "normalized": false, "special": true])
        XCTAssertEqual(added.last?["content"], "<empty_output>")

        let config = try parse(files, "tokenizer_config.json")
        XCTAssertEqual(config["bos_token"], "<|im_start|>")
        XCTAssertEqual(config["eos_token"], "<|im_end|>")
        XCTAssertEqual(config["unk_token"], "<|endoftext|>")
        XCTAssertEqual(config["pad_token"], "<|im_end|>")
        XCTAssertEqual(config["add_bos_token"], false)
        XCTAssertEqual(config["add_prefix_space"], false)
        XCTAssertEqual(config["model_max_length"], 8192)
        XCTAssertEqual(config["clean_up_tokenization_spaces"], false)
        XCTAssertEqual(config["tokenizer_class"], "PreTrainedTokenizerFast")
        XCTAssertEqual(config["added_tokens_decoder"]?.objectValue?.count, 17)
        XCTAssertEqual(config["additional_special_tokens"]?.arrayValue?.count, 14, "17 control tokens minus the 3 with a role")
        XCTAssertTrue(config["chat_template"]?.stringValue?.hasPrefix("{% for message in messages %}") ?? false)
        let map = try parse(files, "special_tokens_map.json")
        XCTAssertEqual(map["bos_token"]?["content"], "<|im_start|>")
        XCTAssertEqual(map.objectValue?.keys, ["additional_special_tokens", "bos_token", "eos_token", "pad_token", "unk_token"])

        if let dump = ProcessInfo.processInfo.environment["LOQUAT_TOKENIZER_DUMP_DIR"], !dump.isEmpty {
            try FileSystem.createDirectory(dump)
            try write(files, into: dump)
        }
    }

    /// The golden ids are llama.cpp's tokenization of mixed-text.txt with SmolLM2's GGUF, which
    /// the `tokenizers` package reproduces from our tokenizer.json (the generator checks that).
    /// Here: decoding them through our vocabulary (byte-level, formats.md §5.2) gives the text.
    func testGoldenIDsDecodeThroughGeneratedVocabulary() throws {
        let files = try XCTUnwrap(TokenizerMetadata.huggingFaceFiles(fromGGUF: try smolLM2Metadata()))
        let tokenizer = try parse(files, "tokenizer.json")
        let vocab = try XCTUnwrap(tokenizer["model"]?["vocab"]?.objectValue)
        var tokenByID: [Int: String] = [:]
        for (token, id) in vocab { tokenByID[id.intValue!] = token }
        let addedIDs = Set((tokenizer["added_tokens"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue })

        let golden = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixturePath("smollm2-mixed-text.ids.json")))))
        let ids = try XCTUnwrap(golden["ids"]?.arrayValue?.compactMap(\.intValue))
        XCTAssertEqual(ids.count, golden["token_count"]?.intValue)
        let text = try String(contentsOfFile: Self.fixturePath("mixed-text.txt"), encoding: .utf8)

        // GPT-2 byte ↔ char table (formats.md §5.2).
        var byteForChar: [Unicode.Scalar: UInt8] = [:]
        var extra: UInt32 = 0
        for byte in 0...255 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            let scalar = printable ? Unicode.Scalar(UInt32(byte))! : Unicode.Scalar(0x100 + extra)!
            if !printable { extra += 1 }
            byteForChar[scalar] = UInt8(byte)
        }
        var bytes: [UInt8] = []
        for id in ids {
            let token = try XCTUnwrap(tokenByID[id], "id \(id)")
            if addedIDs.contains(id) {
                bytes += Array(token.utf8)  // added tokens are literal text
            } else {
                for scalar in token.unicodeScalars { bytes.append(try XCTUnwrap(byteForChar[scalar], "\(token)")) }
            }
        }
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), text)
    }

    /// Ad hoc (set LOQUAT_TOKENIZER_EXPORT_GGUF=<out.gguf> and LOQUAT_TOKENIZER_EXPORT_HF=<HF dir
    /// with model.safetensors, config.json and the tokenizer files>): the export path of
    /// `model/save` to GGUF, F32, for `llama-perplexity` to load.
    func testExportGGUFFromHuggingFaceDirectoryForLlamaCpp() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let output = environment["LOQUAT_TOKENIZER_EXPORT_GGUF"], let source = environment["LOQUAT_TOKENIZER_EXPORT_HF"] else {
            throw XCTSkip("set LOQUAT_TOKENIZER_EXPORT_GGUF and LOQUAT_TOKENIZER_EXPORT_HF to run")
        }
        let checkpoint = try CheckpointLoader.load(path: source)
        let hyperparameters = try XCTUnwrap(checkpoint.config).llamaHyperparameters()
        let keys = try XCTUnwrap(TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: source,
                                                                 vocabularySize: hyperparameters.vocabularySize))
        let writer = GGUFWriter(hyperparameters: hyperparameters, weightType: .f32, extraMetadata: keys)
        try writer.write(huggingFaceTensors: checkpoint.tensors, to: output, overwrite: true)
    }
}
