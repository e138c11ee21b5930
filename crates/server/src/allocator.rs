//! Keeps glibc's allocator from holding on to the memory of password hashes.
//!
//! Argon2id needs 19 MiB per hash. glibc serves an allocation that large
//! with its own mmap and gives it back when freed, but then raises its mmap
//! threshold to that size ("dynamic threshold"), so later hashes come from a
//! thread's arena and their 19 MiB stay resident after the hash: a fresh
//! server that hashed its generated admin password idled at 36 MiB instead
//! of about 16. Setting the threshold explicitly turns the dynamic raise off.
//! The only way to set it without `unsafe` (forbidden in this workspace) is
//! glibc's tunables variable, read when a process starts, so the binary
//! starts itself once more with it set.

use std::{os::unix::process::CommandExt, process::Command};

const TUNABLES: &str = "GLIBC_TUNABLES";
const SELF: &str = "/proc/self/exe";
/// Allocations from 4 MiB up are mapped on their own and unmapped when freed:
/// the hashes, not the 1 MiB frames of large transfers.
///
/// Free memory at the top of a heap is given back to the system only past
/// 4 MiB too. At glibc's default (128 KiB, which also stops adapting once the
/// mmap threshold is set) every 1 MiB piece of a large download or upload,
/// allocated on one thread and freed on another, was given back when freed
/// and faulted in again for the next: a large download took 860 ms of CPU
/// per GiB instead of 450 (bench/README.md).
///
/// Each thread keeps up to 128 freed blocks of each small size (up to 1 KiB)
/// for its next allocations, instead of glibc's default 7. A request makes a
/// few hundred small allocations; with 7, most of them went through the
/// arena's bins and their locking and consolidation (malloc and free were a
/// fifth of a small GET's instructions). At most 128 blocks of each of 64
/// sizes, about 4 MiB per thread if every size were full.
const SETTING: &str = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=4194304:\
                       glibc.malloc.tcache_count=128";

/// Re-executes this binary with [`SETTING`] unless glibc tunables are already
/// set (by us, or by an operator who chose their own). Returns only when no
/// re-execution happens or it failed; the process then runs on unchanged.
pub fn tune() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(TUNABLES).is_some() {
        return;
    }
    // The running image itself, not its path: a binary replaced or deleted
    // on disk since it started is still the one that runs again.
    let Ok(image) = std::fs::read_link(SELF) else { return };
    // Started through the dynamic loader (`ld-linux-x86-64.so.2 ./strongroom
    // …`), the image is the loader, which would take our arguments as its own.
    let name = image.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with("ld-") || name.starts_with("ld.so") {
        return;
    }
    let mut args = std::env::args_os();
    let mut cmd = Command::new(SELF);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    let err = cmd.args(args).env(TUNABLES, SETTING).exec();
    // Only reached when exec failed.
    eprintln!("strongroom: running without allocator tuning ({err})");
}

/// Gives the process back its own name after [`tune`]'s re-execution: the
/// kernel names a process after the file it executes, and that was
/// `/proc/self/exe`, so `ps`, `pgrep -x strongroom` and `killall` saw `exe`.
/// Writing `/proc/self/comm` renames it (15 bytes at most); failing to is
/// harmless.
pub fn keep_name() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let current = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    if current.trim_end() != "exe" {
        return;
    }
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&arg0).file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = if name.is_empty() || name == "exe" { "strongroom" } else { name };
    let short: String = name.chars().take(15).collect();
    let _ = std::fs::write("/proc/self/comm", short);
}
