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
