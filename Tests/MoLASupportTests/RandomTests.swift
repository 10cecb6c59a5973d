import Testing
import MoLASupport

@Suite struct RandomTests {
    @Test func sameSeedSameSequenceAndStreamsDiffer() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42)
        #expect((0..<100).map { _ in a.next() } == (0..<100).map { _ in b.next() })
        var s1 = RandomGenerator(seed: 42, stream: 1), s2 = RandomGenerator(seed: 42, stream: 2)
        #expect(s1.next() != s2.next())
    }

    @Test func uniformIntegersAreUnbiasedEnough() {
        var g = RandomGenerator(seed: 7)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[g.nextInt(below: 6)] += 1 }
        // Each bucket expects 10,000; 5 standard deviations is ~±460.
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
    }

    @Test func permutationIsAPermutationAndDeterministic() {
        var g1 = RandomGenerator(seed: 3), g2 = RandomGenerator(seed: 3)
        let p = g1.permutation(1000)
        #expect(p.sorted() == Array(0..<1000))
        #expect(p == g2.permutation(1000))
        #expect(p != Array(0..<1000))
    }

    @Test func normalHasUnitMomentsAndFloatsStayInRange() {
        var g = RandomGenerator(seed: 11)
        let xs = (0..<100_000).map { _ in Double(g.normal()) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        #expect(abs(mean) < 0.02 && abs(variance - 1) < 0.03)
        #expect((0..<10_000).allSatisfy { _ in (0..<1).contains(g.nextFloat()) })
    }
}
