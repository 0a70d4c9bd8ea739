import Foundation
import JSON
import LoquatSupport
import Synchronization

/// Byte-level BPE (GPT-2, SmolLM/SmolLM2, Llama 3; formats.md §5.2), built from a tokenizer.json
/// or from the `tokenizer.ggml.*` keys of a GGUF (`tokenizer.ggml.model = gpt2`, §2.8).
///
/// Encoding: added tokens are split out of the raw text (leftmost-longest); each remaining piece
/// is pre-tokenized by the family's regex (`ByteLevelPreTokenization`); each pre-token's UTF-8
/// bytes become one symbol each (the byte → char table of §5.2 is applied to the vocabulary at
/// load time instead, so symbols are token ids from the start); adjacent symbols are merged by
/// lowest merge rank, ties to the leftmost pair; the post-processor's special tokens go around
/// the result when `addSpecialTokens` is set. Results are cached per pre-token.
public final class ByteLevelBPETokenizer: Sendable {
    /// The pre-tokenizers implemented (formats.md §5.2; GGUF `tokenizer.ggml.pre` in brackets).
    public enum PreTokenizer: String, Sendable {
        /// ByteLevel with the GPT-2 regex [`gpt-2`].
        case gpt2
        /// Split(Llama-3 regex, Isolated) + ByteLevel without regex [`llama-bpe`].
        case llama3
        /// Digits(individual_digits) + ByteLevel with the GPT-2 regex [`smollm`].
        case smollm
        /// Split(Qwen2 regex: Llama 3's with single digits, Isolated) + ByteLevel [`qwen2`].
        case qwen2
    }

    public let preTokenizer: PreTokenizer
    /// tokenizer.json `normalizer` NFC (Qwen2's files). A GGUF never normalizes: llama.cpp
    /// skips Qwen2's NFC, so the two forms differ on text that is not in NFC.
    public let normalizesToNFC: Bool
    /// BPE `ignore_merges`: a pre-token that is itself a vocabulary entry is emitted whole.
    public let ignoresMerges: Bool
    /// Ids the post-processor puts before and after the sequence (e.g. BOS).
    public let prefixIDs: [Int32]
    public let suffixIDs: [Int32]
    public let addedTokens: [AddedToken]
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    /// One more than the largest id (vocabulary and added tokens).
    public var vocabularySize: Int { tokenBytes.count }

    /// Each id's bytes (the byte-char spelling mapped back to bytes; added tokens: UTF-8).
    private let tokenBytes: [[UInt8]]
    private let isSpecial: [Bool]
    /// Vocabulary by byte string, for `ignore_merges` and token lookup.
    private let idByBytes: [[UInt8]: Int32]
    /// The id of each single byte's token, -1 when the vocabulary lacks it.
    private let byteIDs: [Int32]
    /// Merge of (left id, right id) → (rank, merged id).
    private let merges: [UInt64: Merge]
    private let unknownID: Int32?
    private let addedMatcher: AddedTokenMatcher
    private let cache = Mutex<[[UInt8]: [Int32]]>([:])
    private static let cacheLimit = 1 << 16

    private struct Merge: Sendable {
        let rank: Int32
        let id: Int32
    }

    // MARK: byte ↔ char table

    /// `bytes_char` of formats.md §5.2: byte → the Unicode scalar that spells it in the vocab.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(0x100 + n)!
                n += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var inverse: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { inverse[scalar.value] = UInt8(byte) }
        return inverse
    }()

    /// A vocabulary spelling back to bytes; scalars outside the table keep their UTF-8 bytes.
    static func bytes(ofVocabularyEntry token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            if let byte = scalarToByte[scalar.value] {
                out.append(byte)
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }

    // MARK: construction

    /// The common constructor: `tokens[id]` is the vocabulary spelling of id (nil for gaps),
    /// `merges` the pairs in rank order. Merges naming unknown tokens are skipped.
    public init(tokens: [String?], merges mergePairs: [(String, String)], addedTokens: [AddedToken],
                preTokenizer: PreTokenizer, normalizesToNFC: Bool = false, ignoresMerges: Bool,
                prefixIDs: [Int32], suffixIDs: [Int32], unknownID: Int32?, bosTokenID: Int32?, eosTokenID: Int32?) {
        let count = max(tokens.count, (addedTokens.map { Int($0.id) }.max() ?? -1) + 1)
        var tokenBytes = [[UInt8]](repeating: [], count: count)
        var isSpecial = [Bool](repeating: false, count: count)
        var idByString: [String: Int32] = [:]
        var idByBytes: [[UInt8]: Int32] = [:]
        let addedIDs = Set(addedTokens.map(\.id))
        for (id, token) in tokens.enumerated() {
            guard let token else { continue }
            // Swift String equality is canonical equivalence; byte-level spellings never contain
            // combining sequences that differ only canonically, but compare by bytes regardless.
            idByString[token] = idByString[token] ?? Int32(id)
            if addedIDs.contains(Int32(id)) { continue }
            let bytes = Self.bytes(ofVocabularyEntry: token)
            tokenBytes[id] = bytes
            if idByBytes[bytes] == nil { idByBytes[bytes] = Int32(id) }
        }
        for token in addedTokens {
            tokenBytes[Int(token.id)] = Array(token.content.utf8)
            isSpecial[Int(token.id)] = token.special
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = idByString[String(Character(Self.byteToScalar[byte]))] { byteIDs[byte] = id }
        }
        var mergeTable: [UInt64: Merge] = [:]
        mergeTable.reserveCapacity(mergePairs.count)
        for (rank, pair) in mergePairs.enumerated() {
            guard let left = idByString[pair.0], let right = idByString[pair.1],
                  let merged = idByString[pair.0 + pair.1] else { continue }
            let key = Self.pairKey(left, right)
            if mergeTable[key] == nil { mergeTable[key] = Merge(rank: Int32(rank), id: merged) }
        }
        self.tokenBytes = tokenBytes
        self.isSpecial = isSpecial
        self.idByBytes = idByBytes
        self.byteIDs = byteIDs
        self.merges = mergeTable
        self.addedTokens = addedTokens
        self.addedMatcher = AddedTokenMatcher(addedTokens)
        self.preTokenizer = preTokenizer
        self.normalizesToNFC = normalizesToNFC
        self.ignoresMerges = ignoresMerges
        self.prefixIDs = prefixIDs
        self.suffixIDs = suffixIDs
        self.unknownID = unknownID
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// From a tokenizer.json file.
    public convenience init(tokenizerJSONPath path: String) throws {
        try self.init(tokenizerJSON: try TokenizerJSON.read(path), path: path)
    }

    /// From a parsed tokenizer.json. `path` is for messages.
    public convenience init(tokenizerJSON root: JSONValue, path: String = "tokenizer.json") throws {
        let (model, vocab) = try TokenizerJSON.model(of: root, type: "BPE", path: path)
        for (flag, name) in [("byte_fallback", "byte_fallback"), ("dropout", "dropout")] {
            if let v = model[flag], !(v.isNull || v.boolValue == false) {
                throw TokenizerError(.unsupported, path: path, field: "model.\(name)", "is set; byte-level BPE here has no \(name)")
            }
        }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[field], let s = v.stringValue, !s.isEmpty {
                throw TokenizerError(.unsupported, path: path, field: "model.\(field)", "is \"\(s)\"; not supported")
            }
        }
        var nfc = false
        if let normalizer = root["normalizer"], !normalizer.isNull {
            guard normalizer["type"]?.stringValue == "NFC" else {
                throw TokenizerError(.unsupported, path: path, field: "normalizer", "a byte-level BPE normalizer (\(normalizer["type"]?.stringValue ?? "?")) is not supported; NFC is")
            }
            nfc = true
        }
        let family = TokenizerMetadata.PreTokenizerFamily(preTokenizer: root["pre_tokenizer"])
        let preTokenizer: PreTokenizer
        switch family {
        case .gpt2?: preTokenizer = .gpt2
        case .digitsThenGPT2?: preTokenizer = .smollm
        case .llama3?: preTokenizer = .llama3
        case .qwen2?: preTokenizer = .qwen2
        default:
            throw TokenizerError(.unsupported, path: path, field: "pre_tokenizer",
                                 "\(TokenizerMetadata.describePreTokenizer(root["pre_tokenizer"])) is none of GPT-2, Llama 3, SmolLM, Qwen2")
        }
        let added = try AddedToken.parseList(root["added_tokens"], path: path)
        let tokens = try TokenizerJSON.tokensByID(vocab: vocab, added: added, path: path)
        var pairs: [(String, String)] = []
        for (index, merge) in (model["merges"]?.arrayValue ?? []).enumerated() {
            if let text = merge.stringValue, let space = text.firstIndex(of: " ") {
                pairs.append((String(text[..<space]), String(text[text.index(after: space)...])))
            } else if let pair = merge.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                pairs.append((a, b))
            } else {
                throw TokenizerError(.malformed, path: path, field: "model.merges[\(index)]", "expected \"a b\" or [a, b]")
            }
        }
        var unknownID: Int32?
        if let unk = model["unk_token"]?.stringValue {
            unknownID = vocab[unk]?.intValue.flatMap { Int32(exactly: $0) }
        }
        let (prefix, suffix) = try TokenizerPostProcessor.specialIDs(root["post_processor"], path: path)
        let bos = prefix.first
        let eos = suffix.last ?? added.first(where: { $0.content == "<|endoftext|>" || $0.content == "</s>" || $0.content == "<|end_of_text|>" })?.id
        self.init(tokens: tokens, merges: pairs, addedTokens: added, preTokenizer: preTokenizer, normalizesToNFC: nfc,
                  ignoresMerges: model["ignore_merges"]?.boolValue ?? false, prefixIDs: prefix, suffixIDs: suffix,
                  unknownID: unknownID, bosTokenID: bos, eosTokenID: eos)
    }

    /// From GGUF metadata with `tokenizer.ggml.model = gpt2` (formats.md §2.8). CONTROL and
    /// USER_DEFINED tokens are the added tokens (CONTROL ones special); BOS / EOS are added as
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token` say (absent: on for Llama 3 only, as
    /// llama.cpp does).
    public convenience init(ggufMetadata metadata: GGUFMetadata, path: String = "<gguf>") throws {
        typealias Key = TokenizerMetadata.Key
        guard let model = metadata[Key.model]?.string else {
            throw TokenizerError(.malformed, path: path, field: Key.model, "is missing")
        }
        guard model == "gpt2" else {
            throw TokenizerError(.unsupported, path: path, field: Key.model, "is \"\(model)\", not gpt2 (byte-level BPE)")
        }
        guard let preName = metadata[Key.pre]?.string else {
            throw TokenizerError(.unsupported, path: path, field: Key.pre, "is missing; llama.cpp's generic fallback split is not implemented")
        }
        let preTokenizer: PreTokenizer
        switch TokenizerMetadata.PreTokenizerFamily(ggufName: preName) {
        case .gpt2?: preTokenizer = .gpt2
        case .digitsThenGPT2?: preTokenizer = .smollm
        case .llama3?: preTokenizer = .llama3
        case .qwen2?: preTokenizer = .qwen2
        default: throw TokenizerError(.unsupported, path: path, field: Key.pre, "\"\(preName)\" is none of gpt-2, llama-bpe, smollm, qwen2")
        }
        guard let tokens = metadata[Key.tokens]?.stringArray else {
            throw TokenizerError(.malformed, path: path, field: Key.tokens, "expected an array of strings")
        }
        guard let mergeStrings = metadata[Key.merges]?.stringArray else {
            throw TokenizerError(.malformed, path: path, field: Key.merges, "expected an array of strings")
        }
        var types = [Int](repeating: 1, count: tokens.count)
        if let typeValues = metadata[Key.tokenType]?.array {
            guard typeValues.count == tokens.count else {
                throw TokenizerError(.malformed, path: path, field: Key.tokenType, "has \(typeValues.count) entries for \(tokens.count) tokens")
            }
            types = typeValues.map { $0.integer ?? 1 }
        }
        var added: [AddedToken] = []
        var vocabulary: [String?] = []
        vocabulary.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            switch TokenizerMetadata.TokenType(rawValue: Int32(truncatingIfNeeded: types[id])) {
            case .control?: added.append(AddedToken(id: Int32(id), content: token, special: true)); vocabulary.append(token)
            case .userDefined?: added.append(AddedToken(id: Int32(id), content: token, special: false)); vocabulary.append(token)
            case .unused?: vocabulary.append(nil)
            default: vocabulary.append(token)
            }
        }
        let pairs: [(String, String)] = try mergeStrings.enumerated().map { index, text in
            guard let space = text.firstIndex(of: " ") else {
                throw TokenizerError(.malformed, path: path, field: "\(Key.merges)[\(index)]", "expected \"a b\"")
            }
            return (String(text[..<space]), String(text[text.index(after: space)...]))
        }
        func id(_ role: TokenizerMetadata.SpecialToken) -> Int32? {
            guard let value = metadata[role.idKey]?.integer, value >= 0, value < tokens.count else { return nil }
            return Int32(value)
        }
        let bos = id(.bos), eos = id(.eos)
        let addBOS = metadata[Key.add(.bos)]?.bool ?? (preTokenizer == .llama3)
        let addEOS = metadata[Key.add(.eos)]?.bool ?? false
        self.init(tokens: vocabulary, merges: pairs, addedTokens: added, preTokenizer: preTokenizer,
                  ignoresMerges: preTokenizer == .llama3,
                  prefixIDs: addBOS ? bos.map { [$0] } ?? [] : [], suffixIDs: addEOS ? eos.map { [$0] } ?? [] : [],
                  unknownID: nil, bosTokenID: bos, eosTokenID: eos)
    }

    // MARK: encoding

    /// The ids of `text`; with `addSpecialTokens`, the post-processor's tokens (BOS/EOS) around.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int32] = addSpecialTokens ? prefixIDs : []
        ids.reserveCapacity(scalars.count / 3 + 4)
        var pieces: [Range<Int>] = []
        var localCache: [[UInt8]: [Int32]] = [:]
        var bytes: [UInt8] = []
        for part in addedMatcher.split(scalars) {
            switch part {
            case let .token(id):
                ids.append(id)
            case let .text(range):
                var segment = scalars[range]
                if normalizesToNFC, segment.contains(where: { $0.value >= 0x300 }) {
                    var view = String.UnicodeScalarView()
                    view.append(contentsOf: segment)
                    segment = ArraySlice(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
                }
                pieces.removeAll(keepingCapacity: true)
                preTokenize(segment, into: &pieces)
                for piece in pieces {
                    bytes.removeAll(keepingCapacity: true)
                    for scalar in segment[piece] { bytes.append(contentsOf: UTF8.encode(scalar)!) }
                    if let cached = localCache[bytes] {
                        ids.append(contentsOf: cached)
                    } else {
                        let wordIDs = word(bytes)
                        localCache[bytes] = wordIDs
                        ids.append(contentsOf: wordIDs)
                    }
                }
            }
        }
        if addSpecialTokens { ids.append(contentsOf: suffixIDs) }
        // Share what this call learnt with later calls (bounded).
        if !localCache.isEmpty {
            cache.withLock { shared in
                if shared.count > Self.cacheLimit { shared.removeAll(keepingCapacity: true) }
                for (key, value) in localCache where shared[key] == nil { shared[key] = value }
            }
        }
        return ids
    }

    func preTokenize(_ text: ArraySlice<Unicode.Scalar>, into pieces: inout [Range<Int>]) {
        switch preTokenizer {
        case .gpt2:
            ByteLevelPreTokenization.gpt2(text, into: &pieces)
        case .llama3:
            ByteLevelPreTokenization.llama3(text, into: &pieces)
        case .qwen2:
            ByteLevelPreTokenization.llama3(text, maxDigits: 1, into: &pieces)
        case .smollm:
            var digitPieces: [Range<Int>] = []
            ByteLevelPreTokenization.isolateDigits(text, into: &digitPieces)
            for piece in digitPieces { ByteLevelPreTokenization.gpt2(text[piece], into: &pieces) }
        }
    }

    /// The pre-tokens of `text` as strings (for tests and diagnostics).
    public func preTokens(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var pieces: [Range<Int>] = []
        preTokenize(scalars[...], into: &pieces)
        return pieces.map { range in
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars[range])
            return String(s)
        }
    }

    /// BPE of one pre-token's bytes.
    private func word(_ bytes: [UInt8]) -> [Int32] {
        if ignoresMerges, let id = idByBytes[bytes] { return [id] }
        if let cached = cache.withLock({ $0[bytes] }) { return cached }
        var symbols = bytes.map { byteIDs[Int($0)] }
        if symbols.count > Self.quadraticLimit {
            symbols = mergeWithHeap(symbols)
        } else {
            mergeByScanning(&symbols)
        }
        if symbols.contains(-1) {
            // Bytes the vocabulary lacks: `unk_token` when there is one, else dropped (tokenizers).
            symbols = symbols.compactMap { $0 >= 0 ? $0 : unknownID }
        }
        return symbols
    }

    /// Words longer than this many bytes are merged with a heap (O(n log n)) instead of by
    /// rescanning all pairs after every merge (O(n²), faster for the short words of real text).
    /// Both apply the same rule: the lowest rank first, ties to the leftmost pair.
    static let quadraticLimit = 48

    private func mergeByScanning(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var bestRank = Int32.max
            var bestPosition = -1
            var bestID: Int32 = 0
            var left = symbols[0]
            for position in 1..<symbols.count {
                let right = symbols[position]
                if left >= 0, right >= 0, let merge = merges[Self.pairKey(left, right)], merge.rank < bestRank {
                    bestRank = merge.rank
                    bestPosition = position - 1
                    bestID = merge.id
                }
                left = right
            }
            guard bestPosition >= 0 else { break }
            symbols[bestPosition] = bestID
            symbols.remove(at: bestPosition + 1)
        }
    }

    /// A candidate merge of the live symbols at `left` and `right` (indices into the original
    /// symbol array, so comparing `left` orders candidates left to right).
    private struct Candidate: Comparable {
        let rank: Int32
        let left: Int32
        let right: Int32
        let leftID: Int32
        let rightID: Int32
        static func < (a: Candidate, b: Candidate) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.left < b.left }
    }

    private func mergeWithHeap(_ initial: [Int32]) -> [Int32] {
        var symbol = initial
        let n = symbol.count
        var next = (0..<n).map { Int32($0 + 1) }   // n = end
        var previous = (0..<n).map { Int32($0 - 1) } // -1 = start
        var alive = [Bool](repeating: true, count: n)
        var heap = BinaryMinHeap<Candidate>()
        func push(_ left: Int32, _ right: Int32) {
            let a = symbol[Int(left)], b = symbol[Int(right)]
            guard a >= 0, b >= 0, let merge = merges[Self.pairKey(a, b)] else { return }
            heap.push(Candidate(rank: merge.rank, left: left, right: right, leftID: a, rightID: b))
        }
        for i in 0..<(n - 1) { push(Int32(i), Int32(i + 1)) }
        while let candidate = heap.pop() {
            let l = Int(candidate.left), r = Int(candidate.right)
            // Skip candidates made stale by an earlier merge.
            guard alive[l], alive[r], next[l] == candidate.right,
                  symbol[l] == candidate.leftID, symbol[r] == candidate.rightID,
                  let merge = merges[Self.pairKey(candidate.leftID, candidate.rightID)] else { continue }
            symbol[l] = merge.id
            alive[r] = false
            let after = next[r]
            next[l] = after
            if Int(after) < n { previous[Int(after)] = Int32(l) }
            if previous[l] >= 0 { push(previous[l], Int32(l)) }
            if Int(after) < n { push(Int32(l), after) }
        }
        var out: [Int32] = []
        var i: Int32 = 0
        while Int(i) < n {
            out.append(symbol[Int(i)])
            i = next[Int(i)]
        }
        return out
    }

    // MARK: decoding

    /// The text of `ids` (ByteLevel decoder: bytes joined, then UTF-8 decoded with U+FFFD for
    /// invalid sequences). Ids out of range are skipped.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            let index = Int(id)
            guard index >= 0, index < tokenBytes.count else { continue }
            if skipSpecialTokens, isSpecial[index] { continue }
            bytes.append(contentsOf: tokenBytes[index])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id of a token given by its vocabulary spelling's bytes, or of an added token.
    public func id(ofBytes bytes: [UInt8]) -> Int32? {
        idByBytes[bytes] ?? addedTokens.first(where: { Array($0.content.utf8) == bytes })?.id
    }
}

/// A binary min-heap (the standard library has none).
struct BinaryMinHeap<Element: Comparable> {
    private var storage: [Element] = []

    mutating func push(_ element: Element) {
        storage.append(element)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[child] < storage[parent] else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !storage.isEmpty else { return nil }
        storage.swapAt(0, storage.count - 1)
        let top = storage.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < storage.count, storage[left] < storage[smallest] { smallest = left }
            if right < storage.count, storage[right] < storage[smallest] { smallest = right }
            guard smallest != parent else { break }
            storage.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

/// The special tokens a tokenizer.json `post_processor` adds around a single sequence:
/// TemplateProcessing's `single`, BertProcessing / RobertaProcessing's cls/sep, ByteLevel
/// (nothing), or a Sequence of those.
enum TokenizerPostProcessor {
    static func specialIDs(_ value: JSONValue?, path: String) throws -> (prefix: [Int32], suffix: [Int32]) {
        guard let value, !value.isNull else { return ([], []) }
        switch value["type"]?.stringValue {
        case "ByteLevel"?:
            return ([], [])
        case "Sequence"?:
            var prefix: [Int32] = [], suffix: [Int32] = []
            for step in value["processors"]?.arrayValue ?? [] {
                let (p, s) = try specialIDs(step, path: path)
                prefix += p
                suffix = s + suffix
            }
            return (prefix, suffix)
        case "BertProcessing"?, "RobertaProcessing"?:
            guard let cls = value["cls"]?.arrayValue, cls.count == 2, let clsID = cls[1].intValue,
                  let sep = value["sep"]?.arrayValue, sep.count == 2, let sepID = sep[1].intValue else {
                throw TokenizerError(.malformed, path: path, field: "post_processor", "expected cls and sep as [token, id]")
            }
            return ([Int32(clsID)], [Int32(sepID)])
        case "TemplateProcessing"?:
            guard let single = value["single"]?.arrayValue else {
                throw TokenizerError(.malformed, path: path, field: "post_processor.single", "expected an array")
            }
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for item in single {
                if item["Sequence"] != nil { seenSequence = true; continue }
                guard let name = item["SpecialToken"]?["id"]?.stringValue,
                      let ids = value["special_tokens"]?[name]?["ids"]?.arrayValue else {
                    throw TokenizerError(.malformed, path: path, field: "post_processor.single", "a special token without ids in special_tokens")
                }
                let converted = ids.compactMap { $0.intValue.flatMap { Int32(exactly: $0) } }
                if seenSequence { suffix += converted } else { prefix += converted }
            }
            return (prefix, suffix)
        default:
            throw TokenizerError(.unsupported, path: path, field: "post_processor.type",
                                 "\(value["type"]?.stringValue ?? "missing") is not supported")
        }
    }
}
