//! The allocator's tuning (one malloc arena, a fixed mmap threshold) and handing freed
//! memory back to the system after the steps that decode the whole store.

/// Caps glibc's malloc at one arena and fixes its mmap threshold. By default glibc
/// gives each thread that meets contention an arena of its own (up to 8 per core), and
/// the node's threads (runtime workers, network, sled, compactor, API) each keep freed
/// blocks in theirs. At 100,000 events a node then settles at 76 MB after its start;
/// with one arena at 60–61 MB in every start measured, with two in only half of them
/// (`docs/benchmarks.md`). Small blocks still go through each thread's own cache
/// (glibc's tcache) without the arena lock.
///
/// The mmap threshold: glibc raises it each time a block it had mapped is freed (up
/// to 32 MB), after which the node's big short-lived vectors (the sync set and its
/// copies, 4 MB each at 100,000 events) are carved from the heap and leave holes it
/// cannot hand back. Fixed at [`MMAP_THRESHOLD`], they are mapped and unmapped whole.
///
/// Call first thing in `main`, before any thread starts; `MALLOC_ARENA_MAX` and
/// `MALLOC_MMAP_THRESHOLD_` set in the environment win.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets an allocator parameter; any return value is fine.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

/// Blocks of this size or more are mapped on their own (see [`limit_malloc_arenas`]):
/// glibc's default starting value, kept from rising.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Hands memory the allocator holds but no longer uses back to the system, after a
/// step that decoded the whole store (a start, a rebuild of the view) or a sync
/// session. glibc keeps freed blocks for reuse, so without this the peak of that step
/// would stay resident for good; on a 512 MB Raspberry Pi that is the difference that
/// matters.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointer is
    // passed and any return value is fine.
    unsafe {
        libc::malloc_trim(0);
    }
}
