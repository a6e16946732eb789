//! Approximate, conservative accounting of the interpreter's live heap (GRAMMAR 4.8
//! `max_memory_mb`).
//!
//! Every heap object of a [`Value`](super::Value) (string buffer, list, map, lambda
//! capture) is *tagged* with the id of the [`HeapMeter`] that was current on this thread
//! when it was allocated. Allocation adds its estimated size (capacity-based, header
//! included) to that meter; dropping the object subtracts it again — but only while the
//! same meter is current, so an object that outlives its execution (a result handed to the
//! host) never corrupts another execution's count. Objects made with no meter current
//! (program constants, policy-guard evaluation) have tag 0 and are not counted.
//!
//! The interpreter installs its meter only while its coroutine runs (see
//! [`MeterGuard`]), so on one thread at most one execution is ever counted at a time.
//! Estimates round up (allocator headers, hash-table slack), so the figure is an upper
//! bound of the real live heap of the execution's values.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

/// Live-heap counter of one execution.
#[derive(Debug)]
pub struct HeapMeter {
    id: u32,
    live: Cell<u64>,
    peak: Cell<u64>,
    limit: Cell<u64>,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static CURRENT: Cell<(u32, *const HeapMeter)> = const { Cell::new((0, std::ptr::null())) };
}

impl HeapMeter {
    /// A meter with the given limit in bytes.
    pub fn new(limit: u64) -> HeapMeter {
        let mut id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if id == 0 {
            id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        }
        HeapMeter {
            id,
            live: Cell::new(0),
            peak: Cell::new(0),
            limit: Cell::new(limit),
        }
    }

    /// Bytes currently accounted.
    pub fn live(&self) -> u64 {
        self.live.get()
    }

    /// Highest value of [`Self::live`] so far.
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.get()
    }

    /// Changes the limit (each `with` block has its own).
    pub fn set_limit(&self, limit: u64) {
        self.limit.set(limit);
    }

    /// Whether the live heap is above the limit.
    #[inline]
    pub fn exceeded(&self) -> bool {
        self.live.get() > self.limit.get()
    }

    /// Bytes still available before the limit.
    pub fn remaining(&self) -> u64 {
        self.limit.get().saturating_sub(self.live.get())
    }
}

/// Makes a meter current on this thread for as long as the guard lives.
///
/// # Safety contract (upheld by the interpreter)
/// The meter must outlive the guard; guards must be dropped in reverse order of creation.
pub struct MeterGuard {
    prev: (u32, *const HeapMeter),
}

impl MeterGuard {
    /// Installs `meter` as the current meter of this thread.
    pub fn install(meter: &HeapMeter) -> MeterGuard {
        let prev = CURRENT.with(|c| c.replace((meter.id, meter as *const HeapMeter)));
        MeterGuard { prev }
    }

    /// Installs "no meter": allocations are not counted until the guard drops.
    pub fn none() -> MeterGuard {
        let prev = CURRENT.with(|c| c.replace((0, std::ptr::null())));
        MeterGuard { prev }
    }
}

impl Drop for MeterGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

#[inline]
fn with_current<R>(f: impl FnOnce(u32, Option<&HeapMeter>) -> R) -> R {
    CURRENT.with(|c| {
        let (id, ptr) = c.get();
        // SAFETY: a non-null pointer is only installed by `MeterGuard::install`, whose
        // contract keeps the meter alive while it is current.
        let meter = if ptr.is_null() {
            None
        } else {
            Some(unsafe { &*ptr })
        };
        f(id, meter)
    })
}

/// Accounts `bytes` to the current meter and returns the tag to store in the object.
#[inline]
pub(crate) fn alloc(bytes: usize) -> u32 {
    with_current(|id, m| {
        if let Some(m) = m {
            let live = m.live.get().saturating_add(bytes as u64);
            m.live.set(live);
            if live > m.peak.get() {
                m.peak.set(live);
            }
        }
        id
    })
}

/// Releases `bytes` of an object tagged `tag` (no-op unless its meter is current).
#[inline]
pub(crate) fn free(tag: u32, bytes: usize) {
    if tag == 0 {
        return;
    }
    with_current(|id, m| {
        if id == tag {
            if let Some(m) = m {
                m.live.set(m.live.get().saturating_sub(bytes as u64));
            }
        }
    })
}

/// Accounts a growth of an object from `before` to `after` bytes; adopts objects of other
/// meters into the current one (returns the possibly new tag).
#[inline]
pub(crate) fn resize(tag: u32, before: usize, after: usize) -> u32 {
    with_current(|id, m| {
        let Some(m) = m else { return tag };
        if id != tag {
            let live = m.live.get().saturating_add(after as u64);
            m.live.set(live);
            m.peak.set(m.peak.get().max(live));
            return id;
        }
        if after >= before {
            let live = m.live.get().saturating_add((after - before) as u64);
            m.live.set(live);
            m.peak.set(m.peak.get().max(live));
        } else {
            m.live
                .set(m.live.get().saturating_sub((before - after) as u64));
        }
        tag
    })
}

/// Whether `bytes` more would still fit under the current meter's limit (always true
/// without a meter). Builtins whose output can be much larger than their input (`replace`,
/// `join`, `format`, concatenation) ask before allocating.
#[inline]
pub(crate) fn fits(bytes: usize) -> bool {
    with_current(|_, m| match m {
        Some(m) => (bytes as u64) <= m.remaining(),
        None => true,
    })
}

/// Limit and live bytes of the current meter (for error messages).
pub(crate) fn current_usage() -> Option<(u64, u64)> {
    with_current(|_, m| m.map(|m| (m.limit(), m.live())))
}

/// Estimated bytes of a string buffer of `cap` bytes (Arc header + buffer + allocator
/// slack).
#[inline]
pub(crate) const fn str_cost(cap: usize) -> usize {
    64 + cap
}

/// Estimated bytes of a list with room for `cap` values.
#[inline]
pub(crate) const fn list_cost(cap: usize) -> usize {
    64 + cap * 16
}

/// Estimated bytes of a map with room for `cap` entries (entry vector + index table).
#[inline]
pub(crate) const fn map_cost(cap: usize) -> usize {
    96 + cap * 48
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_while_current() {
        let m = HeapMeter::new(1000);
        let tag = {
            let _g = MeterGuard::install(&m);
            alloc(100)
        };
        assert_eq!(m.live(), 100);
        free(tag, 100); // not current: ignored
        assert_eq!(m.live(), 100);
        {
            let _g = MeterGuard::install(&m);
            free(tag, 100);
        }
        assert_eq!(m.live(), 0);
        assert_eq!(m.peak(), 100);
        assert_eq!(alloc(5), 0);
    }

    #[test]
    fn limit_and_fits() {
        let m = HeapMeter::new(100);
        let _g = MeterGuard::install(&m);
        assert!(fits(100));
        alloc(60);
        assert!(!fits(41));
        alloc(60);
        assert!(m.exceeded());
    }
}
