import Tensors

/// A grid-quantized weight with SpQR-style sparse outliers beside it: `dequantized()` is the
/// inner grid's matrix with the outlier positions overwritten by their stored values.
///
/// `storageBitCount` = the grid's bits + the CSR's bits (`SparseOutliers.storageBitCount`). The
/// grid still stores a code at each outlier position (SpQR does the same: the dense part keeps
/// its shape); those codes are counted with the grid.
public struct OutlierWeight: QuantizedWeight {
    public let inner: any QuantizedWeight
    public let outliers: SparseOutliers
    /// The request with `outliers` set (and `rotation` cleared when this sits inside a
    /// `RotatedWeight`); `inner.spec` is what the grid saw.
    public let spec: QuantizationSpec

    public init(inner: any QuantizedWeight, outliers: SparseOutliers, spec: QuantizationSpec) {
        precondition(inner.rowCount == outliers.rowCount && inner.columnCount == outliers.columnCount,
                     "outliers \(outliers.rowCount)×\(outliers.columnCount) beside a \(inner.rowCount)×\(inner.columnCount) grid")
        self.inner = inner
        self.outliers = outliers
        self.spec = spec
    }

    public var rowCount: Int { inner.rowCount }
    public var columnCount: Int { inner.columnCount }
    public var storageBitCount: Int { inner.storageBitCount + outliers.storageBitCount }

    public func dequantized() -> Matrix<Float> {
        var result = inner.dequantized()
        outliers.overwrite(&result)
        return result
    }
}
