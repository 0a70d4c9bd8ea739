import JSON
import LoquatSupport

/// Why a tokenizer could not be built: the same type as the conversion's error (kind
/// unsupported or malformed, the file and the member or key at fault), so the server maps both
/// with one rule.
public typealias TokenizerError = TokenizerMetadataError

/// A tokenizer.json `added_tokens` entry (formats.md §5.1): matched in the raw text before any
/// normalization or pre-tokenization, and emitted as its id without going through the model.
public struct AddedToken: Sendable, Equatable {
    public let id: Int32
    public let content: String
    /// `special`: dropped by `decode(…, skipSpecialTokens: true)`.
    public let special: Bool
    public let singleWord: Bool
    public let lstrip: Bool
    public let rstrip: Bool

    public init(id: Int32, content: String, special: Bool, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
    }

    /// The `added_tokens` array of a tokenizer.json.
    static func parseList(_ value: JSONValue?, path: String) throws -> [AddedToken] {
        guard let value, !value.isNull else { return [] }
        guard let list = value.arrayValue else {
            throw TokenizerError(.malformed, path: path, field: "added_tokens", "expected an array, found \(value.typeName)")
        }
        return try list.enumerated().map { index, entry in
            // Ids index dense tables, so they are capped like vocabulary ids (16M).
            guard let id = entry["id"]?.intValue, id >= 0, id < 1 << 24,
                  let content = entry["content"]?.stringValue, !content.isEmpty else {
                throw TokenizerError(.malformed, path: path, field: "added_tokens[\(index)]", "needs an integer id in 0..<16777216 and a non-empty content")
            }
            return AddedToken(id: Int32(id), content: content, special: entry["special"]?.boolValue ?? false,
                              singleWord: entry["single_word"]?.boolValue ?? false,
                              lstrip: entry["lstrip"]?.boolValue ?? false, rstrip: entry["rstrip"]?.boolValue ?? false)
        }
    }
}

/// Splits text around added tokens, leftmost-longest (formats.md §5.1).
///
/// All added tokens are matched on the raw text. tokenizers matches `normalized: true` tokens
/// on the normalized text instead; that differs only with a normalizer that changes the token's
/// spelling, which none of the supported tokenizers has for its added tokens.
struct AddedTokenMatcher: Sendable {
    private struct Candidate: Sendable {
        let scalars: [Unicode.Scalar]
        let token: AddedToken
    }

    /// Candidates by first scalar, longest first.
    private let byFirstScalar: [Unicode.Scalar: [Candidate]]

    init(_ tokens: [AddedToken]) {
        var table: [Unicode.Scalar: [Candidate]] = [:]
        for token in tokens {
            let scalars = Array(token.content.unicodeScalars)
            guard let first = scalars.first else { continue }
            table[first, default: []].append(Candidate(scalars: scalars, token: token))
        }
        for key in table.keys { table[key]!.sort { $0.scalars.count > $1.scalars.count } }
        byFirstScalar = table
    }

    var isEmpty: Bool { byFirstScalar.isEmpty }

    enum Piece {
        case text(Range<Int>)
        case token(Int32)
    }

    private static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        s == "_" || ByteLevelPreTokenization.flags(s).contains(.letter) || ByteLevelPreTokenization.flags(s).contains(.number)
    }

    /// The text pieces (possibly empty ranges are omitted) and the added tokens between them.
    func split(_ s: [Unicode.Scalar]) -> [Piece] {
        guard !byFirstScalar.isEmpty else { return s.isEmpty ? [] : [.text(0..<s.count)] }
        var pieces: [Piece] = []
        var textStart = 0
        var i = 0
        while i < s.count {
            guard let candidates = byFirstScalar[s[i]] else { i += 1; continue }
            var matched: Candidate?
            for candidate in candidates {
                let n = candidate.scalars.count
                guard i + n <= s.count else { continue }
                var equal = true
                for k in 0..<n where s[i + k] != candidate.scalars[k] { equal = false; break }
                guard equal else { continue }
                if candidate.token.singleWord {
                    if i > 0, Self.isWordScalar(s[i - 1]) { continue }
                    if i + n < s.count, Self.isWordScalar(s[i + n]) { continue }
                }
                matched = candidate
                break
            }
            guard let match = matched else { i += 1; continue }
            var textEnd = i
            if match.token.lstrip {
                while textEnd > textStart, s[textEnd - 1].properties.isWhitespace { textEnd -= 1 }
            }
            if textStart < textEnd { pieces.append(.text(textStart..<textEnd)) }
            pieces.append(.token(match.token.id))
            i += match.scalars.count
            if match.token.rstrip {
                while i < s.count, s[i].properties.isWhitespace { i += 1 }
            }
            textStart = i
        }
        if textStart < s.count { pieces.append(.text(textStart..<s.count)) }
        return pieces
    }
}

/// The parts of a tokenizer.json file every model type reads first.
enum TokenizerJSON {
    /// The parsed file (`JSON.parse` on the mapped bytes).
    static func read(_ path: String) throws -> JSONValue {
        try MappedFile(path: path).withBytes { try JSON.parse($0) }
    }

    /// `model` and its `vocab`, after checking `model.type` is `type`.
    static func model(of root: JSONValue, type: String, path: String) throws -> (model: JSONValue, vocab: JSONObject) {
        guard let model = root["model"], model["type"]?.stringValue == type else {
            throw TokenizerError(.unsupported, path: path, field: "model.type",
                                 "is \(root["model"]?["type"]?.stringValue ?? "missing"), not \(type)")
        }
        guard let vocab = model["vocab"]?.objectValue else {
            throw TokenizerError(.malformed, path: path, field: "model.vocab", "expected an object")
        }
        return (model, vocab)
    }

    /// Token strings by id: the vocab (ids below 2²⁴, so a hostile id cannot allocate a huge
    /// table), then added tokens in the ids the vocab leaves free; missing ids stay nil.
    static func tokensByID(vocab: JSONObject, added: [AddedToken], path: String) throws -> [String?] {
        var tokens: [String?] = []
        for (token, idValue) in vocab {
            guard let id = idValue.intValue, id >= 0, id < 1 << 24 else {
                throw TokenizerError(.malformed, path: path, field: "model.vocab[\"\(token)\"]", "expected a non-negative id")
            }
            if id >= tokens.count { tokens += [String?](repeating: nil, count: id + 1 - tokens.count) }
            tokens[id] = token
        }
        for token in added {
            if Int(token.id) >= tokens.count { tokens += [String?](repeating: nil, count: Int(token.id) + 1 - tokens.count) }
            if tokens[Int(token.id)] == nil { tokens[Int(token.id)] = token.content }
        }
        return tokens
    }
}
