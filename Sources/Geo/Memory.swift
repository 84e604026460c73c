import CMaxMindDB

/// Returning freed memory to the system. glibc keeps what a process frees for reuse, and after a
/// large block is freed it raises its threshold for giving blocks a mapping of their own, so that
/// the next compile's tens of megabytes land in the heap and stay there once freed: each reload
/// that reopened a database left the server larger (279 MiB after one, from 143).
public enum Memory {
    /// Blocks of 4 MiB and more (a database's offsets and decoded records, a trie, a zone's arrays)
    /// mapped on their own and unmapped when freed. (At 256 KiB a million-record zone took four
    /// times as long to load: its parse makes many blocks of that size.) Called once at start.
    public static func configure() {
        lodestar_mmap_threshold(4 << 20)
    }

    /// Gives back the free pages of every heap (after a compile, or a database closed).
    public static func release() {
        lodestar_release_memory()
    }
}
