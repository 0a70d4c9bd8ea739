/// Exact branch and bound for the multiple-choice knapsack of `MixedPrecisionPlanner`
/// (minimise Σ error subject to Σ bits ≤ budget, one item per layer), with the LP-relaxation
/// bound of Sinha & Zoltners (1979). See `MixedPrecisionPlanner` for the method in words.
final class MixedPrecisionSearch {
    struct Item {
        var bits: Int
        var error: Double
        /// Index among the layer's candidates as given.
        var index: Int
    }

    /// One move along a layer's lower convex hull: `bits` more for `errorChange` (< 0) less error.
    struct Step {
        var bits: Int
        var errorChange: Double
        var ratio: Double { errorChange / Double(bits) }
    }

    /// Per input layer: the undominated candidates, bits ascending and error strictly descending.
    let frontiers: [[Item]]
    /// Layers in branching order (most error to save first).
    let order: [Int]
    let budgetBits: Int
    /// For depth d (layers `order[d...]`): their hull steps by ratio, and the bits and error of
    /// all of them at their smallest candidate.
    private var suffixSteps: [[Step]] = []
    private var suffixMinimumBits: [Int] = []
    private var suffixMinimumError: [Double] = []
    /// Per layer: candidate positions in the frontier, in the order to try them.
    private var branchOrder: [[Int]] = []

    private var bestError = Double.infinity
    private var best: [Int] = []
    private var current: [Int] = []

    init(layers: [[Item]], budgetBits: Int) {
        self.budgetBits = budgetBits
        let frontiers = layers.map(Self.frontier)
        self.frontiers = frontiers
        self.order = frontiers.indices.sorted { a, b in
            let savingA = frontiers[a].first!.error - frontiers[a].last!.error
            let savingB = frontiers[b].first!.error - frontiers[b].last!.error
            return savingA != savingB ? savingA > savingB : a < b
        }
        let hulls = frontiers.map(Self.hullSteps)
        suffixSteps = Array(repeating: [], count: order.count + 1)
        suffixMinimumBits = Array(repeating: 0, count: order.count + 1)
        suffixMinimumError = Array(repeating: 0, count: order.count + 1)
        for depth in stride(from: order.count - 1, through: 0, by: -1) {
            let layer = order[depth]
            suffixSteps[depth] = (suffixSteps[depth + 1] + hulls[layer]).sorted { $0.ratio < $1.ratio }
            suffixMinimumBits[depth] = suffixMinimumBits[depth + 1] + frontiers[layer][0].bits
            suffixMinimumError[depth] = suffixMinimumError[depth + 1] + frontiers[layer][0].error
        }
        // The LP multiplier λ at the root: the ratio of the step the budget runs out in.
        let (_, criticalRatio) = relaxation(depth: 0, availableBits: budgetBits - suffixMinimumBits[0])
        branchOrder = frontiers.map { items in
            items.indices.sorted { a, b in
                let costA = items[a].error - criticalRatio * Double(items[a].bits)
                let costB = items[b].error - criticalRatio * Double(items[b].bits)
                return costA != costB ? costA < costB : items[a].bits > items[b].bits
            }
        }
    }

    /// The optimal candidate index of every layer (input order).
    func solve() -> [Int] {
        current = Array(repeating: 0, count: frontiers.count)
        best = current  // every layer at its smallest candidate fits (checked by the planner)
        bestError = frontiers.reduce(0) { $0 + $1[0].error }
        search(depth: 0, bitsUsed: 0, errorSoFar: 0)
        return frontiers.indices.map { frontiers[$0][best[$0]].index }
    }

    private func search(depth: Int, bitsUsed: Int, errorSoFar: Double) {
        if depth == order.count {
            if errorSoFar < bestError {
                bestError = errorSoFar
                best = current
            }
            return
        }
        let available = budgetBits - bitsUsed - suffixMinimumBits[depth]
        guard available >= 0 else { return }
        let bound = errorSoFar + suffixMinimumError[depth] + relaxation(depth: depth, availableBits: available).errorChange
        guard bound < bestError - 1e-12 * abs(bestError) else { return }
        let layer = order[depth]
        for position in branchOrder[layer] {
            let item = frontiers[layer][position]
            guard bitsUsed + item.bits + suffixMinimumBits[depth + 1] <= budgetBits else { continue }
            current[layer] = position
            search(depth: depth + 1, bitsUsed: bitsUsed + item.bits, errorSoFar: errorSoFar + item.error)
        }
        current[layer] = 0
    }

    /// The LP relaxation of layers `order[depth...]` given `availableBits` beyond their smallest
    /// candidates: the (negative) error change of the best fractional upgrades, and the ratio of
    /// the step cut short (0 when every step fits).
    private func relaxation(depth: Int, availableBits: Int) -> (errorChange: Double, criticalRatio: Double) {
        var change = 0.0, remaining = availableBits
        for step in suffixSteps[depth] {
            if step.bits <= remaining {
                change += step.errorChange
                remaining -= step.bits
            } else {
                change += step.errorChange * Double(remaining) / Double(step.bits)
                return (change, step.ratio)
            }
        }
        return (change, 0)
    }

    /// The candidates no other candidate beats on both counts: by bits ascending, keep one only if
    /// its error is strictly below every lighter (or equally heavy) one's.
    static func frontier(_ items: [Item]) -> [Item] {
        let sorted = items.sorted { ($0.bits, $0.error, $0.index) < ($1.bits, $1.error, $1.index) }
        var kept: [Item] = []
        for item in sorted where kept.last.map({ item.error < $0.error }) ?? true { kept.append(item) }
        return kept
    }

    /// The steps between consecutive points of the frontier's lower convex hull, in order (their
    /// ratios increase: each later step saves less error per bit).
    static func hullSteps(_ frontier: [Item]) -> [Step] {
        var hull: [Item] = []
        for item in frontier {
            // Drop the last hull point while it lies on or above the segment to the new point.
            while hull.count >= 2 {
                let a = hull[hull.count - 2], b = hull[hull.count - 1]
                let cross = Double(b.bits - a.bits) * (item.error - a.error) - (b.error - a.error) * Double(item.bits - a.bits)
                if cross <= 0 { hull.removeLast() } else { break }
            }
            hull.append(item)
        }
        return zip(hull, hull.dropFirst()).map { Step(bits: $1.bits - $0.bits, errorChange: $1.error - $0.error) }
    }
}
