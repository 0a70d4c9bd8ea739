import Foundation
import XCTest
import JSON
import LoquatSupport
import Checkpoints
import TestSupport

/// `ByteLevelBPETokenizer` and `WordPieceTokenizer` against reference tokenizers
/// (formats.md §5), on Fixtures/tokenizers/corpus.txt (22 kB of public-domain prose in many
/// scripts plus code, digits, whitespace runs, emoji and special tokens). The goldens come from
/// Tests/Generators/tokenizer_goldens.py (README-tokenizers.md):
/// - pretokens.json, tiny.ids.json: the PyPI `tokenizers` package with the tiny tokenizer.json
///   files of Fixtures/tokenizer/ (GPT-2, Llama 3, SmolLM pre-tokenizers);
/// - minilm.ids.json: `tokenizers` with all-MiniLM-L6-v2's tokenizer.json;
/// - smollm2.ids.json: llama.cpp's `llama-tokenize` on the SmolLM2 GGUF, cross-checked with
///   `tokenizers` on the tokenizer.json Loquat generates from that GGUF.
final class TokenizerEncodingTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers").path
    static let tinyFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer").path

    private static func read(_ name: String) throws -> [UInt8] {
        try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + name)))
    }

    private static func golden(_ name: String) throws -> JSONValue { try JSON.parse(read(name)) }

    private static func corpus() throws -> String { String(decoding: try read("corpus.txt"), as: UTF8.self) }

    private static func cases() throws -> [String] {
        try XCTUnwrap(golden("cases.json").arrayValue).map { try XCTUnwrap($0.stringValue) }
    }

    private static func ids(_ value: JSONValue?) throws -> [Int32] {
        try XCTUnwrap(value?.arrayValue).map { Int32(try XCTUnwrap($0.intValue)) }
    }

    /// Fails with the first differing position and a little context, not a 9,000-element dump.
    private func assertIDs(_ actual: [Int32], _ expected: [Int32], _ label: String, decode: (([Int32]) -> String)? = nil,
                           file: StaticString = #filePath, line: UInt = #line) {
        guard actual != expected else { return }
        let first = (0..<min(actual.count, expected.count)).first { actual[$0] != expected[$0] } ?? min(actual.count, expected.count)
        let lo = max(0, first - 4)
        var message = "\(label): \(actual.count) ids vs \(expected.count) expected; first difference at \(first): "
            + "got \(Array(actual[lo..<min(actual.count, first + 6)])), expected \(Array(expected[lo..<min(expected.count, first + 6)]))"
        if let decode {
            message += " — text near: \(decode(Array(expected[lo..<min(expected.count, first + 6)])).debugDescription)"
        }
        XCTFail(message, file: file, line: line)
    }

    private static func fnv1a64(_ ids: [Int32]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for id in ids {
            let u = UInt32(bitPattern: id)
            for shift in stride(from: 0, to: 32, by: 8) {
                h = (h ^ UInt64((u >> UInt32(shift)) & 0xFF)) &* 0x100_0000_01B3
            }
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private func tiny(_ name: String) throws -> ByteLevelBPETokenizer {
        try ByteLevelBPETokenizer(tokenizerJSONPath: Self.tinyFixtures + "/\(name)/tokenizer.json")
    }

    private func smolLM2() throws -> ByteLevelBPETokenizer {
        guard let path = SampleModels.smolLM2GGUF else {
            throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf is not in \(SampleModels.cacheDirectory)")
        }
        return try ByteLevelBPETokenizer(ggufMetadata: GGUFFile(path: path).metadata, path: path)
    }

    private func miniLM() throws -> WordPieceTokenizer {
        guard let directory = SampleModels.miniLMDirectory else {
            throw XCTSkip("all-MiniLM-L6-v2 is not in \(SampleModels.cacheDirectory)")
        }
        return try WordPieceTokenizer(tokenizerJSONPath: directory + "/tokenizer.json")
    }

    // MARK: byte-level BPE without sample models

    func testByteToCharTable() {
        let table = ByteLevelBPETokenizer.byteToScalar
        XCTAssertEqual(table[0x20], "\u{120}")
        XCTAssertEqual(table[0x0A], "\u{10A}")
        XCTAssertEqual(table[0x09], "\u{109}")
        XCTAssertEqual(table[0x7F], "\u{121}")
        XCTAssertEqual(table[0xA0], "\u{142}")
        XCTAssertEqual(table[0xAD], "\u{143}")
        XCTAssertEqual(table[0x41], "A")
        XCTAssertEqual(table[0xFF], "\u{FF}")
        XCTAssertEqual(Set(table).count, 256)
    }

    /// Every pre-token boundary of the three regex pre-tokenizers equals `tokenizers`' on the
    /// whole corpus.
    func testPreTokenBoundariesMatchTokenizers() throws {
        let corpus = try Self.corpus()
        let golden = try Self.golden("pretokens.json")
        for (family, fixture) in [("gpt2", "tiny-gpt2"), ("llama3", "tiny-llama3"), ("smollm", "tiny-smollm"), ("qwen2", "tiny-qwen2")] {
            let tokenizer = try tiny(fixture)
            let text = tokenizer.normalizesToNFC ? corpus.precomposedStringWithCanonicalMapping : corpus
            let pieces = tokenizer.preTokens(text)
            let lengths = pieces.map { Int32($0.utf8.count) }
            XCTAssertEqual(pieces.joined(), text, family)
            let expected = try Self.ids(golden[family])
            assertIDs(lengths, expected, "\(family) pre-token byte lengths")
            if lengths != expected {
                let first = (0..<min(lengths.count, expected.count)).first { lengths[$0] != expected[$0] } ?? 0
                XCTFail("\(family): pieces near the difference: \(pieces[max(0, first - 2)..<min(pieces.count, first + 3)].map(\.debugDescription))")
            }
        }
    }

    /// Ids with the tiny GPT-2, Llama 3 (TemplateProcessing BOS, ignore_merges) and SmolLM
    /// tokenizer.json files equal `tokenizers`' on the cases and the corpus.
    func testTinyTokenizersMatchTokenizers() throws {
        let corpus = try Self.corpus()
        let cases = try Self.cases()
        let golden = try Self.golden("tiny.ids.json")
        for (family, fixture) in [("gpt2", "tiny-gpt2"), ("llama3", "tiny-llama3"), ("smollm", "tiny-smollm"), ("qwen2", "tiny-qwen2")] {
            let tokenizer = try tiny(fixture)
            let expectedCases = try XCTUnwrap(golden[family + "_cases"]?.arrayValue)
            XCTAssertEqual(expectedCases.count, cases.count)
            for (text, expected) in zip(cases, expectedCases) {
                assertIDs(tokenizer.encode(text), try Self.ids(expected), "\(family) \(text.debugDescription)")
            }
            let ids = tokenizer.encode(corpus)
            XCTAssertEqual(ids.count, golden[family]?["count"]?.intValue, family)
            XCTAssertEqual(Self.fnv1a64(ids), golden[family]?["fnv1a64"]?.stringValue, family)
            // tiny-smollm's added tokens reuse ids of its vocabulary (264–266) and Qwen2 decodes
            // to the NFC form, so only the other two decode back to the text.
            if family == "gpt2" || family == "llama3" {
                XCTAssertEqual(tokenizer.decode(tokenizer.encode(corpus, addSpecialTokens: false)), corpus, family)
            }
        }
        XCTAssertEqual(try tiny("tiny-llama3").prefixIDs, [264])
        XCTAssertTrue(try tiny("tiny-llama3").ignoresMerges)
    }

    func testEmptyText() throws {
        let tokenizer = try tiny("tiny-llama3")
        XCTAssertEqual(tokenizer.encode("", addSpecialTokens: false), [])
        XCTAssertEqual(tokenizer.encode(""), [264])
        XCTAssertEqual(tokenizer.decode([]), "")
    }

    func testRefusesOtherTokenizerKinds() throws {
        XCTAssertThrowsError(try ByteLevelBPETokenizer(tokenizerJSONPath: Self.tinyFixtures + "/tiny-wordpiece/tokenizer.json")) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .unsupported)
            XCTAssertEqual((error as? TokenizerError)?.field, "model.type")
        }
        XCTAssertThrowsError(try WordPieceTokenizer(tokenizerJSONPath: Self.tinyFixtures + "/tiny-gpt2/tokenizer.json")) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .unsupported)
        }
        // An id that would size a 2^31-entry table is refused, not allocated.
        let hostile: JSONValue = ["model": ["type": "BPE", "vocab": ["a": 0], "merges": []],
                                  "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
                                  "added_tokens": [["id": .int(Int(Int32.max)), "content": "<x>"]]]
        XCTAssertThrowsError(try ByteLevelBPETokenizer(tokenizerJSON: hostile)) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .malformed)
        }
        // Qwen2: NFC before the split, so a decomposed accent encodes as the precomposed one.
        let qwen2 = try tiny("tiny-qwen2")
        XCTAssertTrue(qwen2.normalizesToNFC)
        XCTAssertEqual(qwen2.encode("cafe\u{301} 1234"), qwen2.encode("caf\u{E9} 1234"))
    }

    // MARK: SmolLM2 (GGUF metadata)

    func testSmolLM2MatchesLlamaCppOnCorpus() throws {
        let tokenizer = try smolLM2()
        let golden = try Self.golden("smollm2.ids.json")
        let corpus = try Self.corpus()
        let expected = try Self.ids(golden["corpus"])
        XCTAssertGreaterThan(corpus.utf8.count, 20_000)
        let started = ContinuousClock.now
        let ids = tokenizer.encode(corpus)
        let elapsed = ContinuousClock.now - started
        assertIDs(ids, expected, "SmolLM2 corpus", decode: { tokenizer.decode($0) })
        print("SmolLM2: \(ids.count) tokens of \(corpus.utf8.count) bytes in \(elapsed) (cold cache)")
        for (text, expected) in zip(try Self.cases(), try XCTUnwrap(golden["cases"]?.arrayValue)) {
            assertIDs(tokenizer.encode(text), try Self.ids(expected), "SmolLM2 \(text.debugDescription)")
        }
    }

    /// The tokenizer.json that `TokenizerMetadata` generates from the GGUF gives the same ids.
    func testSmolLM2FromGeneratedTokenizerJSON() throws {
        guard let path = SampleModels.smolLM2GGUF else { throw XCTSkip("SmolLM2 GGUF not present") }
        let files = try XCTUnwrap(TokenizerMetadata.huggingFaceFiles(fromGGUF: GGUFFile(path: path).metadata, path: path))
        let json = try JSON.parse(try XCTUnwrap(files.first { $0.name == "tokenizer.json" }).bytes)
        let tokenizer = try ByteLevelBPETokenizer(tokenizerJSON: json)
        XCTAssertEqual(tokenizer.preTokenizer, .smollm)
        XCTAssertEqual(tokenizer.prefixIDs, [])
        let expected = try Self.ids(Self.golden("smollm2.ids.json")["corpus"])
        assertIDs(tokenizer.encode(try Self.corpus()), expected, "SmolLM2 via tokenizer.json")
    }

    func testSmolLM2RoundTripAndSpecialTokens() throws {
        let tokenizer = try smolLM2()
        let corpus = try Self.corpus()
        XCTAssertEqual(tokenizer.decode(tokenizer.encode(corpus)), corpus)
        for text in try Self.cases() {
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(text)), text)
        }
        XCTAssertEqual(tokenizer.encode(""), [])
        XCTAssertEqual(tokenizer.bosTokenID, 1)
        XCTAssertEqual(tokenizer.eosTokenID, 2)
        XCTAssertEqual(tokenizer.prefixIDs, [], "SmolLM2's GGUF says add_bos_token false")
        let chat = tokenizer.encode("<|im_start|>user\nHi<|im_end|>")
        XCTAssertEqual(chat.first, 1)
        XCTAssertEqual(chat.last, 2)
        XCTAssertEqual(tokenizer.decode(chat, skipSpecialTokens: true), "user\nHi")
        // Not a special token: ordinary BPE.
        XCTAssertFalse(tokenizer.encode("<|im_start").contains(1))
        XCTAssertEqual(tokenizer.vocabularySize, 49152)
        // A second encoding (warm cache) gives the same ids.
        XCTAssertEqual(tokenizer.encode(corpus), tokenizer.encode(corpus))
    }

    // MARK: MiniLM (WordPiece)

    func testMiniLMMatchesTokenizers() throws {
        let tokenizer = try miniLM()
        let golden = try Self.golden("minilm.ids.json")
        let corpus = try Self.corpus()
        let started = ContinuousClock.now
        let ids = tokenizer.encode(corpus)
        let elapsed = ContinuousClock.now - started
        assertIDs(ids, try Self.ids(golden["corpus"]), "MiniLM corpus", decode: { tokenizer.decode($0) })
        print("MiniLM: \(ids.count) tokens of \(corpus.utf8.count) bytes in \(elapsed)")
        assertIDs(tokenizer.encode(corpus, maxLength: 16), try Self.ids(golden["corpus_truncated_16"]), "MiniLM truncated")
        let cases = try Self.cases()
        let withSpecial = try XCTUnwrap(golden["cases"]?.arrayValue)
        let withoutSpecial = try XCTUnwrap(golden["cases_no_special"]?.arrayValue)
        let decoded = try XCTUnwrap(golden["decoded_cases"]?.arrayValue)
        for (index, text) in cases.enumerated() {
            let ids = tokenizer.encode(text)
            assertIDs(ids, try Self.ids(withSpecial[index]), "MiniLM \(text.debugDescription)")
            assertIDs(tokenizer.encode(text, addSpecialTokens: false), try Self.ids(withoutSpecial[index]), "MiniLM no specials \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(ids), decoded[index].stringValue, "decode \(text.debugDescription)")
        }
        XCTAssertEqual(tokenizer.encode(""), [101, 102])
        XCTAssertEqual(tokenizer.fileMaxLength, 128)
        XCTAssertEqual(tokenizer.encode("[CLS] hello [SEP]", addSpecialTokens: false).first, 101)
    }

    // MARK: loading

    func testLoaderPicksTheKindAndFindsTheTokenizerOfACheckpoint() throws {
        XCTAssertTrue(try TokenizerLoader.load(tokenizerJSONPath: Self.tinyFixtures + "/tiny-llama3/tokenizer.json") is ByteLevelBPETokenizer)
        XCTAssertTrue(try TokenizerLoader.load(tokenizerJSONPath: Self.tinyFixtures + "/tiny-wordpiece/tokenizer.json") is WordPieceTokenizer)
        let corpus = try Self.corpus()
        if let path = SampleModels.smolLM2GGUF {
            let tokenizer = try TokenizerLoader.load(for: CheckpointLoader.load(path: path))
            assertIDs(tokenizer.encode(corpus, addSpecialTokens: true), try Self.ids(Self.golden("smollm2.ids.json")["corpus"]), "SmolLM2 via loader")
            XCTAssertEqual(tokenizer.beginningOfSequenceID, 1)
        }
        if let directory = SampleModels.miniLMDirectory {
            let tokenizer = try TokenizerLoader.load(for: CheckpointLoader.load(path: directory))
            assertIDs(tokenizer.encode(corpus, addSpecialTokens: true), try Self.ids(Self.golden("minilm.ids.json")["corpus"]), "MiniLM via loader")
            XCTAssertEqual(tokenizer.beginningOfSequenceID, 101)
            XCTAssertEqual(tokenizer.vocabularySize, 30522)
        }
    }

    // MARK: ad hoc fuzzing

    /// Ad hoc: `tokenizer_goldens.py --fuzz-dir <dir>` writes random texts with `tokenizers`
    /// (MiniLM, the tiny GPT-2 / Llama 3 / SmolLM tokenizers) and llama.cpp (SmolLM2) ids; set
    /// LOQUAT_TOKENIZER_FUZZ_DIR=<dir> to compare.
    func testFuzz() throws {
        guard let directory = ProcessInfo.processInfo.environment["LOQUAT_TOKENIZER_FUZZ_DIR"], !directory.isEmpty else {
            throw XCTSkip("set LOQUAT_TOKENIZER_FUZZ_DIR to run")
        }
        let root = try JSON.parse(Array(Data(contentsOf: URL(fileURLWithPath: directory + "/fuzz.json"))))
        let texts = try XCTUnwrap(root["texts"]?.arrayValue).map { try XCTUnwrap($0.stringValue) }
        let minilm = try XCTUnwrap(root["minilm"]?.arrayValue)
        let smollm2 = try XCTUnwrap(root["smollm2"]?.arrayValue)
        let wordPiece = try miniLM()
        let bpe = try smolLM2()
        var failures = 0, wordPieceFailures = 0, bpeFailures = 0
        var tinyTokenizers: [String: ByteLevelBPETokenizer] = [:]
        for (index, text) in texts.enumerated() where failures < 40 {
            let expectedWordPiece = try Self.ids(minilm[index])
            if wordPiece.encode(text) != expectedWordPiece {
                failures += 1
                wordPieceFailures += 1
                XCTFail("MiniLM \(text.debugDescription) \(text.unicodeScalars.map { String($0.value, radix: 16) }): got \(wordPiece.encode(text)), expected \(expectedWordPiece)")
            }
            let expectedBPE = try Self.ids(smollm2[index])
            if bpe.encode(text, addSpecialTokens: false) != expectedBPE {
                failures += 1
                bpeFailures += 1
                XCTFail("SmolLM2 \(text.debugDescription) \(text.unicodeScalars.map { String($0.value, radix: 16) }): got \(bpe.encode(text)), expected \(expectedBPE); pre-tokens \(bpe.preTokens(text).map(\.debugDescription))")
            }
            for (family, fixture) in [("gpt2", "tiny-gpt2"), ("llama3", "tiny-llama3"), ("smollm", "tiny-smollm"), ("qwen2", "tiny-qwen2")] {
                guard let expected = root["tiny_" + family]?.arrayValue else { continue }
                let tokenizer = try tinyTokenizers[family] ?? tiny(fixture)
                tinyTokenizers[family] = tokenizer
                let expectedIDs = try Self.ids(expected[index])
                if tokenizer.encode(text) != expectedIDs {
                    failures += 1
                    bpeFailures += 1
                    XCTFail("tiny \(family) \(text.debugDescription): got \(tokenizer.encode(text)), expected \(expectedIDs); pre-tokens \(tokenizer.preTokens(text).map(\.debugDescription))")
                }
            }
            if bpe.decode(bpe.encode(text)) != text {
                failures += 1
                XCTFail("SmolLM2 round trip \(text.debugDescription)")
            }
        }
        print("fuzz: \(texts.count) texts, \(wordPieceFailures) MiniLM and \(bpeFailures) byte-level BPE failures (stops at 40)")
    }
}
