import Tensors

/// Dense linear algebra on row-major `Matrix` values, through OpenBLAS (BLAS) and LAPACKE.
///
/// This is the only module that talks to the C libraries; no C type appears in its public
/// surface. Every routine works in `Float` (the `s…` routines) and `Double` (the `d…`
/// routines) through `BLASScalar`.
///
/// Layout conventions (docs/ARCHITECTURE.md, "Numerics conventions"):
/// - BLAS calls use CBLAS's row-major mode, so matrices are passed as they are.
/// - LAPACK is column-major. A row-major `[m, n]` buffer *is* the column-major `[n, m]`
///   buffer of the transpose; each LAPACK wrapper says, next to the call, how it uses that
///   (which factor comes out transposed, which triangle is read).
/// - LAPACK `info ≠ 0` becomes a thrown `LinearAlgebraError` naming the routine.
public enum LinearAlgebra {}
