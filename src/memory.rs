//! The daemon's use of the C allocator (glibc malloc) over years of calls.
//!
//! glibc gives each thread that allocates concurrently its own arena, up to 8 per core,
//! and an arena keeps the memory freed in it for reuse. A call starts ~40 threads
//! (GStreamer streaming threads, libnice, webrtcbin, the LiveKit elements' runtime), so
//! freed pipelines leave memory spread over many arenas, and the resident size grew
//! by ~5 MiB a call (debug build: 290 MiB after 2 calls, 456 MiB after 30). With two
//! arenas it stays flat (228 → 242 MiB over the same 30 calls; `tests/soak.rs`).
//!
//! glibc also raises its mmap threshold each time a large block allocated with mmap is
//! freed (up to 32 MiB), after which video-frame-sized blocks (640x480 I420 is 450 KiB)
//! come from the heap and fragment it: the resident size after a call then strayed
//! −4 %/+7 % from call to call (60 calls). With the threshold fixed at
//! [`MMAP_THRESHOLD`] those blocks are mapped and unmapped whole: −0.4 %/+4.1 %, and
//! 7 MiB less.
//! See mallopt(3), `M_ARENA_MAX`, `M_MMAP_THRESHOLD`, and malloc_trim(3).
//!
//! [`heap_stats`] reports what the allocator holds (mallinfo2(3)) for `callbox status`,
//! so a soak can tell memory in use (a leak or a cache) from memory freed but kept.

/// Arenas the daemon allows glibc (`M_ARENA_MAX`); the environment's
/// `MALLOC_ARENA_MAX`, when set, wins.
pub const ARENAS: i32 = 2;

/// Blocks from this size up (bytes) are mmapped and returned to the system when freed
/// (`M_MMAP_THRESHOLD`, fixed: glibc then stops raising it); the environment's
/// `MALLOC_MMAP_THRESHOLD_`, when set, wins.
pub const MMAP_THRESHOLD: i32 = 256 * 1024;

/// Limits glibc's malloc arenas to [`ARENAS`] and fixes its mmap threshold at
/// [`MMAP_THRESHOLD`], unless the environment sets them (`MALLOC_ARENA_MAX`,
/// `MALLOC_MMAP_THRESHOLD_`). Call first thing in `main`, before any thread starts.
/// Does nothing on other C libraries.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator parameter; called before other threads
    // exist, as mallopt(3) recommends for M_ARENA_MAX.
    unsafe {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Returns the free memory at the top of each arena to the system (malloc_trim(3)), e.g.
/// after a call's pipelines are torn down. Does nothing on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory that is free; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What glibc's malloc holds right now, summed over its arenas (mallinfo2(3)), KiB.
///
/// `in_use_kib` growing from call to call means live allocations (a leak or a cache);
/// `free_kib` growing means freed memory the arenas keep (fragmentation). Free
/// memory is not necessarily resident: [`release_free_memory`] gives its whole pages
/// back to the system while glibc still counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeapStats {
    /// Allocated and not freed, KiB (`uordblks` + `hblkhd`).
    pub in_use_kib: u64,
    /// Of `in_use_kib`, in blocks mapped on their own (`hblkhd`: at least
    /// [`MMAP_THRESHOLD`] each), KiB.
    pub mmapped_kib: u64,
    /// Freed and kept by the arenas for reuse (`fordblks`), KiB.
    pub free_kib: u64,
}

/// The allocator's figures now ([`HeapStats`]); `None` on C libraries other than glibc.
/// Takes each arena's lock for a moment.
pub fn heap_stats() -> Option<HeapStats> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's counters (glibc >= 2.33).
        let m = unsafe { libc::mallinfo2() };
        let kib = |b: usize| b as u64 / 1024;
        Some(HeapStats {
            in_use_kib: kib(m.uordblks) + kib(m.hblkhd),
            mmapped_kib: kib(m.hblkhd),
            free_kib: kib(m.fordblks),
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn heap_stats_count_a_live_block_and_forget_it_when_freed() {
        tune_allocator();
        let before = heap_stats().unwrap();
        // Above the mmap threshold, so it is mapped on its own and counted at once.
        let block = vec![1u8; 4 * 1024 * 1024];
        let during = heap_stats().unwrap();
        assert!(
            during.mmapped_kib >= before.mmapped_kib + 4096,
            "{before:?} -> {during:?}"
        );
        assert!(during.in_use_kib >= before.in_use_kib + 4096);
        drop(std::hint::black_box(block));
        let after = heap_stats().unwrap();
        assert!(
            after.mmapped_kib + 4096 <= during.mmapped_kib,
            "{during:?} -> {after:?}"
        );
    }
}
