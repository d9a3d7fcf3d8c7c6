//! The allocator `sluice` runs with: mimalloc, asked the way std's own `System` allocator asks
//! malloc. The workspace's one crate with `unsafe` code (a `GlobalAlloc` cannot be written
//! without it); every other crate forbids it.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`, whatever its
//! alignment. In mimalloc 3 that takes the generic aligned path for any block over 1 KiB
//! (~230 instructions against ~30 for `mi_malloc`), and the request path makes two such
//! blocks per request (the boxed response future, hyper's read buffer). `mi_malloc` already
//! aligns every block to 16 bytes (`MI_MAX_ALIGN_SIZE`, malloc's own guarantee), so only a
//! stricter alignment, or one larger than the block, goes the aligned way.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every block `mi_malloc` returns has (at least as large as the block).
const MALLOC_ALIGN: usize = 16;

/// mimalloc as the global allocator (`#[global_allocator]`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocator;

/// True when `mi_malloc` of `size` bytes is aligned enough for `align`.
fn plain(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

// SAFETY: every method hands the request to mimalloc, whose blocks satisfy the layout: the
// plain calls only when mimalloc's own alignment covers it, the aligned calls otherwise; a
// block is freed by `mi_free` whichever call made it.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for the impl.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for the impl.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; the new block is aligned as the old one was
        // asked to be.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size from 1 byte to beyond mimalloc's small blocks, at every alignment up to a
    /// page: the block is aligned, writable to its end, and keeps its bytes when it grows.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=80).chain([127, 128, 1000, 1024, 1025, 2128, 8192, 70_000]) {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; every block is freed with the layout it has.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                    std::ptr::write_bytes(p, 0xA5, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "grown: size {size}, align {align}");
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xA5));
                    a.dealloc(q, Layout::from_size_align(size * 3, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed: size {size}, align {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
