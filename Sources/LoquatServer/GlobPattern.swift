/// A shell-style glob over tensor names, as Python's `fnmatch` reads one plus brace alternation:
///
/// - `*` any run of characters (dots included: `model.layers.*.weight` reaches every depth),
/// - `?` one character,
/// - `[abc]`, `[a-z]`, `[!a-z]` / `[^a-z]` one character in / not in the set,
/// - `{q,k,v}` any of the comma-separated alternatives (they may nest and hold wildcards),
/// - `\c` the character `c` literally.
///
/// The whole name must match. A malformed pattern (an unclosed `[` or `{`, a trailing `\`) is
/// refused when it is compiled, so a typo does not silently match nothing.
struct GlobPattern: Sendable, CustomStringConvertible {
    let text: String
    /// The brace-expanded alternatives, each a token sequence.
    private let alternatives: [[Token]]

    private enum Token: Sendable, Equatable {
        case literal(Character)
        case anyCharacter
        case anyRun
        case set(negated: Bool, ranges: [ClosedRange<Character>])
    }

    struct SyntaxError: Error, CustomStringConvertible {
        let pattern: String
        let reason: String
        var description: String { "glob \"\(pattern)\": \(reason)" }
    }

    init(_ text: String) throws {
        self.text = text
        let expanded = try Self.expandBraces(Array(text), pattern: text)
        alternatives = try expanded.map { try Self.tokenize($0, pattern: text) }
    }

    var description: String { text }

    func matches(_ name: String) -> Bool {
        let characters = Array(name)
        return alternatives.contains { Self.match($0, characters) }
    }

    // MARK: Braces

    /// `a{b,c{d,e}}f` → `abf`, `acdf`, `acef`. Escapes and bracket sets are kept intact.
    private static func expandBraces(_ characters: [Character], pattern: String) throws -> [[Character]] {
        // Find the first top-level `{` outside brackets and escapes.
        var index = 0
        while index < characters.count {
            switch characters[index] {
            case "\\": index += 2
            case "[": index = try closingBracket(characters, from: index, pattern: pattern) + 1
            case "{":
                let (parts, end) = try braceAlternatives(characters, from: index, pattern: pattern)
                let prefix = Array(characters[..<index])
                let suffixes = try expandBraces(Array(characters[(end + 1)...]), pattern: pattern)
                var result: [[Character]] = []
                for part in parts {
                    for middle in try expandBraces(part, pattern: pattern) {
                        for suffix in suffixes { result.append(prefix + middle + suffix) }
                    }
                }
                return result
            case "}": throw SyntaxError(pattern: pattern, reason: "\"}\" without \"{\"")
            default: index += 1
            }
        }
        return [characters]
    }

    /// The comma-separated parts of the brace group opening at `start`, and its closing index.
    private static func braceAlternatives(_ characters: [Character], from start: Int,
                                          pattern: String) throws -> ([[Character]], Int) {
        var parts: [[Character]] = []
        var current: [Character] = []
        var depth = 0
        var index = start + 1
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "\\":
                current.append(character)
                if index + 1 < characters.count { current.append(characters[index + 1]) }
                index += 2
                continue
            case "[":
                let end = try closingBracket(characters, from: index, pattern: pattern)
                current += characters[index...end]
                index = end + 1
                continue
            case "{": depth += 1
            case "}":
                if depth == 0 {
                    parts.append(current)
                    return (parts, index)
                }
                depth -= 1
            case "," where depth == 0:
                parts.append(current)
                current = []
                index += 1
                continue
            default: break
            }
            current.append(character)
            index += 1
        }
        throw SyntaxError(pattern: pattern, reason: "\"{\" is not closed")
    }

    /// Index of the `]` closing the set that opens at `start` (a `]` right after `[`, `[!` or
    /// `[^` is a member, as in fnmatch).
    private static func closingBracket(_ characters: [Character], from start: Int, pattern: String) throws -> Int {
        var index = start + 1
        if index < characters.count, characters[index] == "!" || characters[index] == "^" { index += 1 }
        if index < characters.count, characters[index] == "]" { index += 1 }
        while index < characters.count {
            if characters[index] == "\\" { index += 2; continue }
            if characters[index] == "]" { return index }
            index += 1
        }
        throw SyntaxError(pattern: pattern, reason: "\"[\" is not closed")
    }

    // MARK: Tokens

    private static func tokenize(_ characters: [Character], pattern: String) throws -> [Token] {
        var tokens: [Token] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "*":
                if tokens.last != .anyRun { tokens.append(.anyRun) }
                index += 1
            case "?":
                tokens.append(.anyCharacter)
                index += 1
            case "\\":
                guard index + 1 < characters.count else { throw SyntaxError(pattern: pattern, reason: "ends with \"\\\"") }
                tokens.append(.literal(characters[index + 1]))
                index += 2
            case "[":
                let end = try closingBracket(characters, from: index, pattern: pattern)
                tokens.append(try set(Array(characters[(index + 1)..<end]), pattern: pattern))
                index = end + 1
            default:
                tokens.append(.literal(character))
                index += 1
            }
        }
        return tokens
    }

    private static func set(_ body: [Character], pattern: String) throws -> Token {
        var body = body[...]
        var negated = false
        if let first = body.first, first == "!" || first == "^" {
            negated = true
            body = body.dropFirst()
        }
        var members: [Character] = []
        var escaped: [Bool] = []
        var index = body.startIndex
        while index < body.endIndex {
            if body[index] == "\\", index + 1 < body.endIndex {
                members.append(body[index + 1])
                escaped.append(true)
                index += 2
            } else {
                members.append(body[index])
                escaped.append(false)
                index += 1
            }
        }
        var ranges: [ClosedRange<Character>] = []
        var position = 0
        while position < members.count {
            if position + 2 < members.count, members[position + 1] == "-", !escaped[position + 1] {
                let (low, high) = (members[position], members[position + 2])
                guard low <= high else {
                    throw SyntaxError(pattern: pattern, reason: "range \(low)-\(high) is reversed")
                }
                ranges.append(low...high)
                position += 3
            } else {
                ranges.append(members[position]...members[position])
                position += 1
            }
        }
        guard !ranges.isEmpty else { throw SyntaxError(pattern: pattern, reason: "\"[]\" is an empty set") }
        return .set(negated: negated, ranges: ranges)
    }

    // MARK: Matching

    /// Greedy matching with one backtrack point for the last `*` (linear in practice, never
    /// exponential: a later `*` makes earlier ones irrelevant).
    private static func match(_ tokens: [Token], _ name: [Character]) -> Bool {
        var t = 0, n = 0
        var starToken = -1, starName = 0
        while n < name.count {
            if t < tokens.count {
                switch tokens[t] {
                case .anyRun:
                    starToken = t
                    starName = n
                    t += 1
                    continue
                case .anyCharacter:
                    t += 1; n += 1
                    continue
                case let .literal(character) where character == name[n]:
                    t += 1; n += 1
                    continue
                case let .set(negated, ranges) where ranges.contains { $0.contains(name[n]) } != negated:
                    t += 1; n += 1
                    continue
                default:
                    break
                }
            }
            guard starToken >= 0 else { return false }
            t = starToken + 1
            starName += 1
            n = starName
        }
        while t < tokens.count, tokens[t] == .anyRun { t += 1 }
        return t == tokens.count
    }
}
