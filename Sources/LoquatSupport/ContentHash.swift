/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3), over whole files.
/// Recorded in `loquat.json` so an artifact names exactly which source bytes it came from.
public enum ContentHash {
    public static func fnv1a64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The hash of the files' contents in order, as 16 hex digits prefixed with `fnv1a64:`.
    public static func ofFiles(_ paths: [String]) throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for path in paths {
            let file = try MappedFile(path: path)
            hash = file.withBytes { fnv1a64($0, seed: hash) }
        }
        let hex = String(hash, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
