internal import CBLAS
import Tensors

/// The scalar types the linear-algebra routines compute in: `Float` (BLAS/LAPACK `s…`
/// routines) and `Double` (`d…` routines).
///
/// The protocol is sealed: `BLASKernels` has no public initializer, so only the two
/// conformances below exist.
public protocol BLASScalar: BinaryFloatingPoint, Sendable {
    /// This precision's BLAS/LAPACK entry points (opaque outside LinearAlgebra).
    static var blasKernels: BLASKernels<Self> { get }
}

/// The table of C entry points of one precision. Opaque to other modules.
public struct BLASKernels<Scalar>: Sendable {
    typealias Pointer = UnsafeMutablePointer<Scalar>?
    typealias Constant = UnsafePointer<Scalar>?

    /// "s" or "d", to name routines in errors.
    let prefix: String
    let gemm: @Sendable (CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint,
                         Scalar, Constant, blasint, Constant, blasint, Scalar, Pointer, blasint) -> Void
    let gemv: @Sendable (CBLAS_ORDER, CBLAS_TRANSPOSE, blasint, blasint, Scalar, Constant, blasint,
                         Constant, blasint, Scalar, Pointer, blasint) -> Void
    let syrk: @Sendable (CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint, blasint, Scalar, Constant,
                         blasint, Scalar, Pointer, blasint) -> Void
    let trsm: @Sendable (CBLAS_ORDER, CBLAS_SIDE, CBLAS_UPLO, CBLAS_TRANSPOSE, CBLAS_DIAG, blasint, blasint,
                         Scalar, Constant, blasint, Pointer, blasint) -> Void
    /// OpenBLAS extension: B = α·op(A), out of place (used for transposes).
    let omatcopy: @Sendable (CBLAS_ORDER, CBLAS_TRANSPOSE, blasint, blasint, Scalar, Constant, blasint,
                             Pointer, blasint) -> Void
    let gesdd: @Sendable (Int32, CChar, LAPACKInt, LAPACKInt, Pointer, LAPACKInt, Pointer, Pointer,
                          LAPACKInt, Pointer, LAPACKInt) -> LAPACKInt
    let gesvd: @Sendable (Int32, CChar, CChar, LAPACKInt, LAPACKInt, Pointer, LAPACKInt, Pointer, Pointer,
                          LAPACKInt, Pointer, LAPACKInt, Pointer) -> LAPACKInt
    let syevd: @Sendable (Int32, CChar, CChar, LAPACKInt, Pointer, LAPACKInt, Pointer) -> LAPACKInt
    let potrf: @Sendable (Int32, CChar, LAPACKInt, Pointer, LAPACKInt) -> LAPACKInt
    let potri: @Sendable (Int32, CChar, LAPACKInt, Pointer, LAPACKInt) -> LAPACKInt
    let geqrf: @Sendable (Int32, LAPACKInt, LAPACKInt, Pointer, LAPACKInt, Pointer) -> LAPACKInt
    let orgqr: @Sendable (Int32, LAPACKInt, LAPACKInt, LAPACKInt, Pointer, LAPACKInt, Constant) -> LAPACKInt

    func routine(_ name: String) -> String { prefix + name }
}

extension Float: BLASScalar {
    public static var blasKernels: BLASKernels<Float> {
        BLASKernels(prefix: "s", gemm: cblas_sgemm, gemv: cblas_sgemv, syrk: cblas_ssyrk, trsm: cblas_strsm,
                    omatcopy: cblas_somatcopy, gesdd: LAPACKE_sgesdd, gesvd: LAPACKE_sgesvd,
                    syevd: LAPACKE_ssyevd, potrf: LAPACKE_spotrf, potri: LAPACKE_spotri,
                    geqrf: LAPACKE_sgeqrf, orgqr: LAPACKE_sorgqr)
    }
}

extension Double: BLASScalar {
    public static var blasKernels: BLASKernels<Double> {
        BLASKernels(prefix: "d", gemm: cblas_dgemm, gemv: cblas_dgemv, syrk: cblas_dsyrk, trsm: cblas_dtrsm,
                    omatcopy: cblas_domatcopy, gesdd: LAPACKE_dgesdd, gesvd: LAPACKE_dgesvd,
                    syevd: LAPACKE_dsyevd, potrf: LAPACKE_dpotrf, potri: LAPACKE_dpotri,
                    geqrf: LAPACKE_dgeqrf, orgqr: LAPACKE_dorgqr)
    }
}
