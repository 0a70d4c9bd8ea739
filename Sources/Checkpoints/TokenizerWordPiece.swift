import Foundation
import JSON
import LoquatSupport

/// WordPiece for BERT-style models (all-MiniLM-L6-v2; formats.md §5.3), from a tokenizer.json:
/// added tokens split out of the raw text, BertNormalizer, BertPreTokenizer, greedy
/// longest-match-first WordPiece with the `##` continuation prefix, and `[CLS] … [SEP]` from the
/// post-processor.
public final class WordPieceTokenizer: Sendable {
    public struct Normalizer: Sendable, Equatable {
        public var cleanText = true
        public var handleChineseChars = true
        public var stripAccents = true
        public var lowercase = true
        public init() {}
    }

    public let normalizer: Normalizer?
    public let unknownID: Int32
    public let continuingSubwordPrefix: String
    public let maxInputCharsPerWord: Int
    /// Ids the post-processor puts before and after the sequence (`[CLS]`, `[SEP]`).
    public let prefixIDs: [Int32]
    public let suffixIDs: [Int32]
    /// tokenizer.json `truncation.max_length`, when the file has one (the caller decides whether
    /// to use it: sentence-transformers uses its own `max_seq_length`).
    public let fileMaxLength: Int?
    public let addedTokens: [AddedToken]
    public var vocabularySize: Int { tokens.count }

    private let tokens: [String]
    private let isSpecial: [Bool]
    private let idByBytes: [[UInt8]: Int32]
    private let prefixBytes: [UInt8]
    private let addedMatcher: AddedTokenMatcher

    public init(vocabulary: [String], unknownToken: String = "[UNK]", continuingSubwordPrefix: String = "##",
                maxInputCharsPerWord: Int = 100, normalizer: Normalizer? = Normalizer(), addedTokens: [AddedToken] = [],
                prefixIDs: [Int32] = [], suffixIDs: [Int32] = [], fileMaxLength: Int? = nil) throws {
        var idByBytes: [[UInt8]: Int32] = [:]
        for (id, token) in vocabulary.enumerated() where idByBytes[Array(token.utf8)] == nil {
            idByBytes[Array(token.utf8)] = Int32(id)
        }
        guard let unk = idByBytes[Array(unknownToken.utf8)] else {
            throw TokenizerError(.malformed, path: "tokenizer.json", field: "model.unk_token", "\"\(unknownToken)\" is not in the vocabulary")
        }
        var isSpecial = [Bool](repeating: false, count: vocabulary.count)
        for token in addedTokens where Int(token.id) < vocabulary.count { isSpecial[Int(token.id)] = token.special }
        self.tokens = vocabulary
        self.isSpecial = isSpecial
        self.idByBytes = idByBytes
        self.unknownID = unk
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.prefixBytes = Array(continuingSubwordPrefix.utf8)
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.normalizer = normalizer
        self.addedTokens = addedTokens
        self.addedMatcher = AddedTokenMatcher(addedTokens)
        self.prefixIDs = prefixIDs
        self.suffixIDs = suffixIDs
        self.fileMaxLength = fileMaxLength
    }

    /// From a tokenizer.json file.
    public convenience init(tokenizerJSONPath path: String) throws {
        try self.init(tokenizerJSON: try TokenizerJSON.read(path), path: path)
    }

    /// From a parsed tokenizer.json (`model.type` WordPiece, `normalizer` BertNormalizer or
    /// null, `pre_tokenizer` BertPreTokenizer).
    public convenience init(tokenizerJSON root: JSONValue, path: String = "tokenizer.json") throws {
        let (model, vocab) = try TokenizerJSON.model(of: root, type: "WordPiece", path: path)
        let added = try AddedToken.parseList(root["added_tokens"], path: path)
        let tokens = try TokenizerJSON.tokensByID(vocab: vocab, added: added, path: path)
        var normalizer: Normalizer?
        if let value = root["normalizer"], !value.isNull {
            guard value["type"]?.stringValue == "BertNormalizer" else {
                throw TokenizerError(.unsupported, path: path, field: "normalizer.type", "\(value["type"]?.stringValue ?? "missing") is not BertNormalizer")
            }
            var n = Normalizer()
            n.cleanText = value["clean_text"]?.boolValue ?? true
            n.handleChineseChars = value["handle_chinese_chars"]?.boolValue ?? true
            n.lowercase = value["lowercase"]?.boolValue ?? true
            // strip_accents null follows lowercase (tokenizers' BertNormalizer).
            n.stripAccents = value["strip_accents"]?.boolValue ?? n.lowercase
            normalizer = n
        }
        if let pre = root["pre_tokenizer"], !pre.isNull, pre["type"]?.stringValue != "BertPreTokenizer" {
            throw TokenizerError(.unsupported, path: path, field: "pre_tokenizer.type", "\(pre["type"]?.stringValue ?? "?") is not BertPreTokenizer")
        }
        let (prefix, suffix) = try TokenizerPostProcessor.specialIDs(root["post_processor"], path: path)
        try self.init(vocabulary: tokens.map { $0 ?? "" },
                      unknownToken: model["unk_token"]?.stringValue ?? "[UNK]",
                      continuingSubwordPrefix: model["continuing_subword_prefix"]?.stringValue ?? "##",
                      maxInputCharsPerWord: model["max_input_chars_per_word"]?.intValue ?? 100,
                      normalizer: normalizer, addedTokens: added, prefixIDs: prefix, suffixIDs: suffix,
                      fileMaxLength: root["truncation"]?["max_length"]?.intValue)
    }

    // MARK: encoding

    /// The ids of `text`. With `addSpecialTokens`, `[CLS] … [SEP]`; `maxLength` truncates the
    /// whole (special tokens included) to at most that many ids by dropping from the end of the
    /// text, as tokenizers' `LongestFirst` does for one sequence.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var body: [Int32] = []
        for part in addedMatcher.split(scalars) {
            switch part {
            case let .token(id):
                body.append(id)
            case let .text(range):
                let normalized = normalize(scalars[range])
                for word in Self.preTokenize(normalized) { wordPiece(word, into: &body) }
            }
        }
        if let maxLength {
            let room = max(0, maxLength - (addSpecialTokens ? prefixIDs.count + suffixIDs.count : 0))
            if body.count > room { body.removeLast(body.count - room) }
        }
        return addSpecialTokens ? prefixIDs + body + suffixIDs : body
    }

    /// The general category as tokenizers' BertNormalizer and BertPreTokenizer see it: their
    /// category tables (the `unicode_categories` crate) are Unicode 8.0, so a code point assigned
    /// later counts as unassigned. Measured with tokenizers 0.23.3: Mn U+16AF0 (7.0) and U+1DA00
    /// (8.0) are stripped but U+1E00B (9.0), U+0898 (14.0) are not; Po U+2E42 (8.0) is
    /// punctuation but U+2E43 (9.0) is not; Cf U+1BCA0 (7.0) is dropped but U+08E2 (9.0) kept.
    private static func legacyCategory(_ s: Unicode.Scalar) -> Unicode.GeneralCategory {
        guard let age = s.properties.age, age.major < 8 || (age.major == 8 && age.minor == 0) else { return .unassigned }
        return s.properties.generalCategory
    }

    /// tokenizers `is_control` for clean_text: categories Cc, Cf, Co, Cs (Unicode 8.0 tables)
    /// except \t \n \r. Unassigned code points (Cn) are kept, as tokenizers does (measured:
    /// U+1A7F5 and the noncharacter U+FFFE survive and become `[UNK]`), although formats.md §5.3
    /// lists all of C*.
    private static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch legacyCategory(s) {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// The CJK ideograph blocks BertNormalizer surrounds with spaces (formats.md §5.3).
    private static func isChinese(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    private static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// BertPreTokenizer punctuation: ASCII punctuation or any P* category (Unicode 8.0 tables).
    private static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v) { return true }
        switch legacyCategory(s) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// BertNormalizer: clean_text, CJK spacing, strip accents (NFD, then drop Mn as of Unicode
    /// 8.0), lowercase
    /// (each scalar's full lowercase mapping, no context such as final sigma, as tokenizers does).
    func normalize(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        guard let n = normalizer else { return Array(text) }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for s in text {
            if n.cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isWhitespace(s) { out.append(" "); continue }
            }
            if n.handleChineseChars, Self.isChinese(s) {
                out.append(" "); out.append(s); out.append(" ")
                continue
            }
            out.append(s)
        }
        if n.stripAccents, out.contains(where: { $0.value >= 0x80 }) {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: out)
            let decomposed = String(view).decomposedStringWithCanonicalMapping
            out = decomposed.unicodeScalars.filter { Self.legacyCategory($0) != .nonspacingMark }
        }
        if n.lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(out.count)
            for s in out {
                if s.value < 0x80 {
                    lowered.append((0x41...0x5A).contains(s.value) ? Unicode.Scalar(s.value + 0x20)! : s)
                } else {
                    lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                }
            }
            out = lowered
        }
        return out
    }

    /// BertPreTokenizer: whitespace separates words and is dropped; punctuation is isolated.
    static func preTokenize(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for i in s.indices {
            if isWhitespace(s[i]) {
                if start < i { words.append(s[start..<i]) }
                start = i + 1
            } else if isPunctuation(s[i]) {
                if start < i { words.append(s[start..<i]) }
                words.append(s[i..<(i + 1)])
                start = i + 1
            }
        }
        if start < s.count { words.append(s[start..<s.count]) }
        return words
    }

    /// Greedy longest-match-first; a word with an unmatchable position, or longer than
    /// `maxInputCharsPerWord`, is one `[UNK]`.
    private func wordPiece(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        if word.count > maxInputCharsPerWord { ids.append(unknownID); return }
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        for s in word {
            bytes.append(contentsOf: UTF8.encode(s)!)
            offsets.append(bytes.count)
        }
        var pieces: [Int32] = []
        var start = 0
        let n = word.count
        var key: [UInt8] = []
        while start < n {
            var end = n
            var found: Int32?
            while end > start {
                key.removeAll(keepingCapacity: true)
                if start > 0 { key.append(contentsOf: prefixBytes) }
                key.append(contentsOf: bytes[offsets[start]..<offsets[end]])
                if let id = idByBytes[key] { found = id; break }
                end -= 1
            }
            guard let id = found else { ids.append(unknownID); return }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }

    // MARK: decoding

    /// The WordPiece decoder: tokens joined by spaces, `##` pieces glued to the previous one,
    /// and tokenizers' `cleanup` applied to each token with its leading space (so it removes
    /// the space before `.`, `?`, `!` and `,`; its contraction patterns span several tokens and
    /// never match, as in tokenizers).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) -> String {
        var text = ""
        var first = true
        for id in ids {
            let index = Int(id)
            guard index >= 0, index < tokens.count else { continue }
            if skipSpecialTokens, isSpecial[index] { continue }
            var piece = tokens[index]
            if !first {
                if piece.hasPrefix(continuingSubwordPrefix) {
                    piece = String(piece.dropFirst(continuingSubwordPrefix.count))
                } else {
                    piece = " " + piece
                }
            }
            for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                               (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
            where piece.contains(from) {
                piece = piece.replacingOccurrences(of: from, with: to)
            }
            text += piece
            first = false
        }
        return text
    }

    public func token(_ id: Int32) -> String? {
        Int(id) >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }
}
