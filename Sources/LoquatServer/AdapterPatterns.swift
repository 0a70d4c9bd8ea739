import JSONRPC

/// PEFT's `rank_pattern` / `alpha_pattern` matching (`peft.utils.other.get_pattern_key`): a key
/// matches module `name` when `re.match(rf"(.*\.)?({key})$", name)` does; the first matching key
/// in the order given wins.
struct AdapterPatterns: Sendable {
    struct Entry: @unchecked Sendable {
        let key: String
        let value: Double
        let regex: Regex<AnyRegexOutput>
    }

    let entries: [Entry]

    init(_ pairs: [(String, Double)], param: String) throws {
        entries = try pairs.map { key, value in
            do {
                return Entry(key: key, value: value, regex: try Regex("(.*\\.)?(\(key))"))
            } catch {
                throw RPCError.invalidParams(param, "\"\(key)\" is not a valid regular expression: \(error)")
            }
        }
    }

    func value(for module: String) -> Double? {
        entries.first { (try? $0.regex.wholeMatch(in: module)) != nil }?.value
    }

    var isEmpty: Bool { entries.isEmpty }
}
