//! Process and host figures for `/api/v1/metrics` and `/metrics`, read from `/proc` and
//! `statvfs` (Linux). Missing figures read as 0 (API-CONTRACT §4.6: numbers, never null).

use parking_lot::Mutex;
use std::path::Path;
use std::time::Instant;

/// Resident set size of this process, bytes.
pub fn rss_bytes() -> u64 {
    let page = 4096u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * page)
}

/// Total host memory, bytes.
pub fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU use of this process in percent of one core, averaged since the previous call (the
/// first call averages since [`CpuMeter::new`]).
pub struct CpuMeter {
    last: Mutex<(Instant, u64)>,
    /// The last [`CpuMeter::usage`] reading and when it was taken.
    usage: Mutex<Option<(Instant, u64, f64)>>,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMeter {
    /// Starts measuring.
    pub fn new() -> Self {
        Self {
            last: Mutex::new((Instant::now(), cpu_ticks().unwrap_or(0))),
            usage: Mutex::new(None),
        }
    }

    /// Resident bytes and CPU percent, read from `/proc` at most every 250 ms: a health
    /// endpoint may be polled thousands of times a second, and each reading is two file
    /// reads (they were most of a health request's cost).
    pub fn usage(&self) -> (u64, f64) {
        const FRESH: std::time::Duration = std::time::Duration::from_millis(250);
        let mut cached = self.usage.lock();
        match *cached {
            Some((at, rss, cpu)) if at.elapsed() < FRESH => (rss, cpu),
            _ => {
                let (rss, cpu) = (rss_bytes(), self.percent());
                *cached = Some((Instant::now(), rss, cpu));
                (rss, cpu)
            }
        }
    }

    /// Percent of one core since the previous reading.
    pub fn percent(&self) -> f64 {
        // Linux reports in USER_HZ, 100 per second on every supported architecture.
        const HZ: f64 = 100.0;
        let now = Instant::now();
        let ticks = cpu_ticks().unwrap_or(0);
        let mut last = self.last.lock();
        let dt = now.duration_since(last.0).as_secs_f64();
        let used = ticks.saturating_sub(last.1) as f64 / HZ;
        if dt < 0.2 {
            // Too short to be meaningful; keep the window open.
            return if dt > 0.0 {
                (used / dt * 100.0).min(100.0 * num_cpus())
            } else {
                0.0
            };
        }
        *last = (now, ticks);
        used / dt * 100.0
    }
}

fn num_cpus() -> f64 {
    // available_parallelism reads the cgroup quota files on every call; the answer does not
    // change while the process runs, and health/metrics ask it per request.
    static CPUS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64))
}

/// Bytes under `dir` (regular files, not following symlinks; bounded walk).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > 200_000 {
                return total;
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// Percent of the filesystem holding `dir` that is in use.
pub fn fs_used_percent(dir: &Path) -> f64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 0.0;
    };
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 || s.f_blocks == 0 {
        return 0.0;
    }
    let used = s.f_blocks.saturating_sub(s.f_bfree) as f64;
    let avail_total = used + s.f_bavail as f64;
    if avail_total <= 0.0 {
        0.0
    } else {
        used / avail_total * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures() {
        assert!(rss_bytes() > 0);
        assert!(host_memory_bytes() > rss_bytes());
        let m = CpuMeter::new();
        let t = Instant::now();
        while t.elapsed().as_millis() < 300 {
            std::hint::black_box((0..1000).sum::<u64>());
        }
        let p = m.percent();
        assert!(p > 10.0 && p <= 100.0 * num_cpus() + 5.0, "{p}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/b"), [0u8; 24]).unwrap();
        assert_eq!(dir_size(dir.path()), 1024);
        let pct = fs_used_percent(dir.path());
        assert!(pct > 0.0 && pct <= 100.0, "{pct}");
    }
}
