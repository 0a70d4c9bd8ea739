#if canImport(Glibc)
import Glibc
#endif
import LoquatSupport
import Tensors

/// Tells whether writing to a path would replace a file that tensors are mapped from.
///
/// The writers rename a finished temporary file into place, so a mapped input would in fact
/// survive (the old inode lives on while mapped); the rule that an input is never overwritten
/// (ARCHITECTURE.md, "Files written") is about not destroying the user's source. Tensors do not
/// record their file, so the mappings of the process are read from `/proc/self/maps`:
///
/// ```
/// 7f2fa34df000-7f2fa34e0000 r--s 00000000 fe:00 16220318    /path/to/file
/// start-end (hex)           perms offset  major:minor inode  pathname
/// ```
///
/// A mapping belongs to the target when its device and inode equal the target's `stat`, or its
/// pathname equals the target's real path. Where `/proc` is unavailable nothing is detected.
public enum SafetensorsInputGuard {
    /// Names of `tensors` whose bytes are mapped from the existing file at `path`; empty when the
    /// file does not exist or none are.
    public static func tensorsMapped(from path: String, among tensors: [Tensor]) -> [String] {
        guard let identity = FileSystem.identity(of: path) else { return [] }
        let ranges = mappedRanges(device: identity.0, inode: identity.1, realPath: realPath(of: path))
        guard !ranges.isEmpty else { return [] }
        return tensors.filter { tensor in
            guard let start = tensor.storage.bytes.baseAddress, tensor.byteCount > 0 else { return false }
            let address = UInt(bitPattern: start)
            return ranges.contains { $0.contains(address) }
        }.map(\.name)
    }

    /// Throws `wouldOverwriteInput` naming the first tensor mapped from `path`.
    public static func check(writing path: String, tensors: [Tensor]) throws {
        if let first = tensorsMapped(from: path, among: tensors).first {
            throw SafetensorsError.wouldOverwriteInput(path: path, tensor: first)
        }
    }

    private static func mappedRanges(device: UInt64, inode: UInt64, realPath: String?) -> [Range<UInt>] {
        guard let text = readProcFile("/proc/self/maps") else { return [] }
        // glibc's encoding of dev_t (gnu_dev_major / gnu_dev_minor).
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        var ranges: [Range<UInt>] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            let addresses = fields[0].split(separator: "-")
            let deviceParts = fields[3].split(separator: ":")
            guard addresses.count == 2, deviceParts.count == 2,
                  let start = UInt(addresses[0], radix: 16), let end = UInt(addresses[1], radix: 16), start < end,
                  let mapMajor = UInt64(deviceParts[0], radix: 16), let mapMinor = UInt64(deviceParts[1], radix: 16),
                  let mapInode = UInt64(fields[4]) else { continue }
            let pathname = fields.count > 5 ? fields[5].trimmingLeadingSpaces : ""
            let sameFile = (mapInode == inode && mapMajor == major && mapMinor == minor)
                || (realPath != nil && pathname == realPath!)
            if sameFile { ranges.append(start..<end) }
        }
        return ranges
    }

    private static func realPath(of path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Reads a /proc file (its size is reported as 0, so it is read until end of file).
    private static func readProcFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    fileprivate var trimmingLeadingSpaces: Substring { drop { $0 == " " } }
}
