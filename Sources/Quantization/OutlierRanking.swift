/// Top-k selection for the outlier scores: the `count` positions with the largest scores,
/// ties broken toward the smaller position, so the choice is deterministic.
///
/// Fast path: quickselect (Hoare, 1961) finds the k-th largest score in expected O(n), then one
/// pass collects the positions above it and, in ascending order, as many equal to it as are
/// still needed. The reference sorts every candidate by (score descending, position ascending)
/// and takes the first `count`; both give the same set.
enum OutlierRanking {
    /// Positions (ascending) of the `count` largest `scores` among those not `excluded`.
    static func largest(_ scores: [Double], count: Int, excluding excluded: [Bool]) -> [Int] {
        precondition(scores.count == excluded.count)
        var values: [Double] = []
        values.reserveCapacity(scores.count)
        for position in scores.indices where !excluded[position] { values.append(scores[position]) }
        guard count < values.count else { return scores.indices.filter { !excluded[$0] } }
        guard count > 0 else { return [] }
        let threshold = kthLargest(&values, rank: count)
        // One pass: every position above the threshold, and the first `count` equal to it.
        var above: [Int] = [], equal: [Int] = []
        for position in scores.indices where !excluded[position] {
            if scores[position] > threshold {
                above.append(position)
            } else if scores[position] == threshold && equal.count < count {
                equal.append(position)
            }
        }
        equal.removeLast(equal.count - (count - above.count))
        // Merge the two ascending lists.
        var result: [Int] = []
        result.reserveCapacity(count)
        var i = 0, j = 0
        while i < above.count || j < equal.count {
            if j == equal.count || (i < above.count && above[i] < equal[j]) {
                result.append(above[i])
                i += 1
            } else {
                result.append(equal[j])
                j += 1
            }
        }
        return result
    }

    /// Scalar reference of `largest`: a full sort.
    static func largestReference(_ scores: [Double], count: Int, excluding excluded: [Bool]) -> [Int] {
        let candidates = scores.indices.filter { !excluded[$0] }
        let ordered = candidates.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        return Array(ordered.prefix(count)).sorted()
    }

    /// The `rank`-th largest value (1-based) of `values`, which it reorders.
    static func kthLargest(_ values: inout [Double], rank: Int) -> Double {
        precondition(rank >= 1 && rank <= values.count)
        let target = rank - 1  // index in descending order
        return values.withUnsafeMutableBufferPointer { values in
            var low = 0, high = values.count - 1
            while low < high {
                // Median of three as the pivot keeps sorted and constant runs from going quadratic.
                let pivot = median(values[low], values[low + (high - low) / 2], values[high])
                var i = low, j = high
                while i <= j {
                    while values[i] > pivot { i += 1 }
                    while values[j] < pivot { j -= 1 }
                    if i <= j {
                        values.swapAt(i, j)
                        i += 1
                        j -= 1
                    }
                }
                // Now values[low...j] ≥ pivot ≥ values[i...high], and values[j+1..<i] == pivot.
                if target <= j {
                    high = j
                } else if target >= i {
                    low = i
                } else {
                    return pivot
                }
            }
            return values[low]
        }
    }

    private static func median(_ a: Double, _ b: Double, _ c: Double) -> Double {
        max(min(a, b), min(max(a, b), c))
    }
}
