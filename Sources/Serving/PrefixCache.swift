/// Shared prompt prefixes (system prompts, conversation history, a repository an agent re-reads)
/// kept in a worker's KV pool, as vLLM's automatic prefix caching and SGLang's radix cache do: a
/// prompt whose prefix is resident skips computing it and shares its KV pages. Entries in use are
/// pinned; the least recently used of the others is evicted when the pool needs room.
struct PrefixCache {
    private struct Entry {
        var tokens: Int
        var references: Int
        var lastUse: Int
    }

    private var entries: [Int: Entry] = [:]
    /// KV tokens the resident prefixes hold.
    private(set) var tokens = 0
    private var clock = 0

    /// Tokens of `id` resident now (0 when absent); pins the entry.
    mutating func acquire(_ id: Int) -> Int {
        guard var e = entries[id] else { return 0 }
        clock += 1
        e.references += 1
        e.lastUse = clock
        entries[id] = e
        return e.tokens
    }

    /// Makes `id` resident with `count` tokens (after a prompt computed it) and pins it. Returns
    /// the tokens the pool holds for it now (an entry already there keeps its size).
    mutating func insert(_ id: Int, tokens count: Int) -> Int {
        if entries[id] != nil { return acquire(id) }
        clock += 1
        entries[id] = Entry(tokens: count, references: 1, lastUse: clock)
        tokens += count
        return count
    }

    mutating func release(_ id: Int) {
        guard var e = entries[id], e.references > 0 else { return }
        e.references -= 1
        entries[id] = e
    }

    /// Evicts unpinned entries, least recently used first, until `needed` tokens are freed or
    /// none is left; returns the tokens freed. Linear in the entries (evictions are rare and the
    /// entries few: one per distinct prefix resident).
    mutating func evict(atLeast needed: Int) -> Int {
        var freed = 0
        while freed < needed {
            var oldest: (key: Int, value: Entry)? = nil
            for e in entries where e.value.references == 0 && e.value.lastUse < (oldest?.value.lastUse ?? .max) { oldest = e }
            guard let victim = oldest else { break }
            entries[victim.key] = nil
            tokens -= victim.value.tokens
            freed += victim.value.tokens
        }
        return freed
    }
}
