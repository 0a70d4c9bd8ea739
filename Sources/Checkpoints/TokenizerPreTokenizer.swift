/// The regex pre-tokenizers of byte-level BPE (formats.md §5.2), as hand-written scanners over
/// Unicode scalars rather than a regex engine: one pass, no backtracking state, and exact with
/// respect to the reference engine's classes:
///
/// - `\p{L}` = general category Lu, Ll, Lt, Lm, Lo; `\p{N}` = Nd, Nl, No;
/// - `\s` = the Unicode White_Space property, which is what Oniguruma (the engine Hugging Face
///   `tokenizers` uses) means by `\s` for Unicode text: U+0009–000D, U+0020, U+0085, U+00A0,
///   U+1680, U+2000–200A, U+2028, U+2029, U+202F, U+205F, U+3000. (ICU's `\s` differs on rare
///   code points, one reason not to use Foundation's regex here.)
///
/// Each scanner returns the pieces as consecutive, non-overlapping ranges covering the input,
/// i.e. the `Isolated` split of the regex: every scalar is matched by some alternative.
enum ByteLevelPreTokenization {
    /// Character classes of one scalar, as bit flags.
    struct Flags: OptionSet {
        let rawValue: UInt8
        static let letter = Flags(rawValue: 1)
        static let number = Flags(rawValue: 2)
        static let space = Flags(rawValue: 4)
        /// `\r` or `\n`.
        static let newline = Flags(rawValue: 8)
    }

    static func flags(_ scalar: Unicode.Scalar) -> Flags {
        let value = scalar.value
        if value < 0x80 {
            switch value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x0A, 0x0D: return [.space, .newline]
            case 0x09, 0x0B, 0x0C, 0x20: return .space
            default: return []
            }
        }
        if scalar.properties.isWhitespace { return .space }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return []
        }
    }

    /// The classes of every scalar of `text`.
    static func classify(_ text: ArraySlice<Unicode.Scalar>) -> [Flags] {
        text.map(flags)
    }

    /// The length of an English contraction (`'s|'t|'re|'ve|'m|'ll|'d`) at `i`, or 0.
    /// `caseInsensitive` is Llama 3's `(?i:…)`, applied to ASCII letters only (Oniguruma would
    /// also fold U+017F ſ to s; llama.cpp does not, and neither do we).
    @inline(__always)
    static func contraction(_ s: ArraySlice<Unicode.Scalar>, _ i: Int, caseInsensitive: Bool) -> Int {
        guard s[i] == "'", i + 1 < s.endIndex else { return 0 }
        func letter(_ k: Int) -> UInt32? {
            guard k < s.endIndex else { return nil }
            var v = s[k].value
            if caseInsensitive, v >= 0x41, v <= 0x5A { v += 0x20 }
            return v
        }
        switch letter(i + 1) {
        case 0x73, 0x74, 0x6D, 0x64: return 2 // s t m d
        case 0x72, 0x76: return letter(i + 2) == 0x65 ? 3 : 0 // re ve
        case 0x6C: return letter(i + 2) == 0x6C ? 3 : 0 // ll
        default: return 0
        }
    }

    /// End of the whitespace run starting at `i`.
    @inline(__always)
    static func spaceRunEnd(_ f: [Flags], _ base: Int, _ i: Int, _ end: Int) -> Int {
        var k = i
        while k < end, f[k - base].contains(.space) { k += 1 }
        return k
    }

    /// `\s+(?!\S)|\s+` at `i` (a whitespace scalar): the run minus its last scalar when a
    /// non-space follows and the run is longer than one, else the whole run.
    @inline(__always)
    static func trailingSpaces(_ f: [Flags], _ base: Int, _ i: Int, _ end: Int) -> Int {
        let k = spaceRunEnd(f, base, i, end)
        if k < end, k - 1 > i { return k - 1 }
        return k
    }

    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    static func gpt2(_ s: ArraySlice<Unicode.Scalar>, into pieces: inout [Range<Int>]) {
        let f = classify(s)
        let base = s.startIndex, end = s.endIndex
        var i = base
        while i < end {
            let start = i
            let c = contraction(s, i, caseInsensitive: false)
            if c > 0 {
                i += c
            } else {
                let j = s[i] == " " && i + 1 < end ? i + 1 : i
                let fj = f[j - base]
                if fj.contains(.letter) {
                    i = j + 1
                    while i < end, f[i - base].contains(.letter) { i += 1 }
                } else if fj.contains(.number) {
                    i = j + 1
                    while i < end, f[i - base].contains(.number) { i += 1 }
                } else if fj.isEmpty {
                    i = j + 1
                    while i < end, f[i - base].isEmpty { i += 1 }
                } else {
                    // s[i] is whitespace (a lone space before whitespace falls here too).
                    i = trailingSpaces(f, base, i, end)
                }
            }
            pieces.append(start..<i)
        }
    }

    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`. `maxDigits` is 3 (Qwen2's variant
    /// has 1).
    static func llama3(_ s: ArraySlice<Unicode.Scalar>, maxDigits: Int = 3, into pieces: inout [Range<Int>]) {
        let f = classify(s)
        let base = s.startIndex, end = s.endIndex
        var i = base
        while i < end {
            let start = i
            let fi = f[i - base]
            let c = contraction(s, i, caseInsensitive: true)
            if c > 0 {
                i += c
            } else if fi.contains(.letter) || (!fi.contains(.newline) && !fi.contains(.number)
                                               && i + 1 < end && f[i + 1 - base].contains(.letter)) {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                i += 1
                while i < end, f[i - base].contains(.letter) { i += 1 }
            } else if fi.contains(.number) {
                var n = 0
                while i < end, n < maxDigits, f[i - base].contains(.number) { i += 1; n += 1 }
            } else if let j = Optional(s[i] == " " && i + 1 < end ? i + 1 : i), f[j - base].isEmpty {
                // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
                i = j + 1
                while i < end, f[i - base].isEmpty { i += 1 }
                while i < end, f[i - base].contains(.newline) { i += 1 }
            } else {
                // s[i] is whitespace. `\s*[\r\n]+`: through the last \r or \n of the run.
                let k = spaceRunEnd(f, base, i, end)
                var lastNewline = -1
                var p = k - 1
                while p >= i { if f[p - base].contains(.newline) { lastNewline = p; break }; p -= 1 }
                if lastNewline >= 0 {
                    i = lastNewline + 1
                } else {
                    i = trailingSpaces(f, base, i, end)
                }
            }
            pieces.append(start..<i)
        }
    }

    /// Hugging Face `Digits(individual_digits: true)`: every `\p{N}` scalar is its own piece;
    /// the runs between them are the other pieces.
    static func isolateDigits(_ s: ArraySlice<Unicode.Scalar>, into pieces: inout [Range<Int>]) {
        var runStart = s.startIndex
        for i in s.indices where flags(s[i]).contains(.number) {
            if runStart < i { pieces.append(runStart..<i) }
            pieces.append(i..<(i + 1))
            runStart = i + 1
        }
        if runStart < s.endIndex { pieces.append(runStart..<s.endIndex) }
    }
}
