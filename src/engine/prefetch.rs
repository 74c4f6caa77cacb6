//! A cache prefetch hint: the one place the crate asks for `unsafe`.

/// Asks the CPU to start loading every cache line `value` touches, so that a later read does not
/// wait for memory. A hint only: it never faults and changes no result.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = std::ptr::from_ref(value).cast::<i8>();
        let offset = start.addr() % 64;
        let lines = (offset + std::mem::size_of::<T>()).div_ceil(64);
        for line in 0..lines {
            // SAFETY: `_mm_prefetch` is a hint that cannot fault, whatever the address, and SSE
            // is part of the x86_64 baseline.
            #[allow(unsafe_code)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.wrapping_sub(offset).wrapping_add(64 * line),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
