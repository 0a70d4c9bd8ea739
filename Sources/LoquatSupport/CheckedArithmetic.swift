/// Size arithmetic that refuses to overflow. Every byte count derived from untrusted input
/// (a file header, a frame length) goes through these, so a hostile value becomes a thrown
/// error instead of a trap or a wrapped allocation size.
public struct SizeOverflowError: Error, CustomStringConvertible, Sendable {
    public let context: String
    public init(_ context: String) { self.context = context }
    public var description: String { "size arithmetic overflows: \(context)" }
}

public enum CheckedArithmetic {
    /// `a · b`, throwing when the product does not fit in `Int`.
    @inlinable
    public static func multiply(_ a: Int, _ b: Int, _ context: @autoclosure () -> String) throws -> Int {
        let (value, overflow) = a.multipliedReportingOverflow(by: b)
        if overflow || a < 0 || b < 0 { throw SizeOverflowError(context()) }
        return value
    }

    /// `a + b`, throwing when the sum does not fit in `Int`.
    @inlinable
    public static func add(_ a: Int, _ b: Int, _ context: @autoclosure () -> String) throws -> Int {
        let (value, overflow) = a.addingReportingOverflow(b)
        if overflow || a < 0 || b < 0 { throw SizeOverflowError(context()) }
        return value
    }

    /// The product of all `values` (1 for an empty list: a scalar has one element).
    public static func product(_ values: [Int], _ context: @autoclosure () -> String) throws -> Int {
        var result = 1
        for value in values { result = try multiply(result, value, context()) }
        return result
    }

    /// Converts an unsigned on-disk count to `Int`, throwing when it does not fit.
    @inlinable
    public static func int(_ value: UInt64, _ context: @autoclosure () -> String) throws -> Int {
        guard value <= UInt64(Int.max) else { throw SizeOverflowError(context()) }
        return Int(value)
    }

    /// Rounds `value` up to a multiple of `alignment` (a positive number).
    public static func alignUp(_ value: Int, to alignment: Int) throws -> Int {
        let remainder = value % alignment
        return remainder == 0 ? value : try add(value, alignment - remainder, "align \(value) to \(alignment)")
    }
}
