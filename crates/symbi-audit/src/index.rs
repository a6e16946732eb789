//! The query index (`index.bin`): one fixed-size entry per event, in sequence order
//! (docs/audit-format.md §8). Derived data: rebuilt from the segments when missing or
//! damaged, never trusted for verification.

use crate::error::{AuditError, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use symbi_crypto::CryptoProvider;

/// Size of one entry.
pub const ENTRY_LEN: usize = 64;

/// Where an event is and what it is about, for queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, Unix nanoseconds.
    pub ts_nanos: i64,
    /// First sequence number of the segment holding the event.
    pub segment: u64,
    /// Offset of the event's frame in that segment.
    pub offset: u64,
    /// Length of the frame.
    pub frame_len: u32,
    /// Agent id bytes (zeros when none).
    pub agent: [u8; 16],
    /// First 8 bytes of SHA-256 of the event type.
    pub type_tag: [u8; 8],
}

impl IndexEntry {
    /// Little-endian encoding: seq, ts, segment, offset (u64/i64), frame_len (u32),
    /// 4 reserved zero bytes, agent (16), type tag (8).
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.ts_nanos.to_le_bytes());
        b[16..24].copy_from_slice(&self.segment.to_le_bytes());
        b[24..32].copy_from_slice(&self.offset.to_le_bytes());
        b[32..36].copy_from_slice(&self.frame_len.to_le_bytes());
        b[40..56].copy_from_slice(&self.agent);
        b[56..64].copy_from_slice(&self.type_tag);
        b
    }

    /// Decodes an entry.
    pub fn decode(b: &[u8]) -> IndexEntry {
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap());
        IndexEntry {
            seq: u(0..8),
            ts_nanos: u(8..16) as i64,
            segment: u(16..24),
            offset: u(24..32),
            frame_len: u32::from_le_bytes(b[32..36].try_into().unwrap()),
            agent: b[40..56].try_into().unwrap(),
            type_tag: b[56..64].try_into().unwrap(),
        }
    }
}

/// The tag stored for an event type.
pub fn type_tag(p: &dyn CryptoProvider, event_type: &str) -> [u8; 8] {
    p.sha256(event_type.as_bytes())[..8].try_into().unwrap()
}

/// The index file with an in-memory tail (entries not yet written, or never written by a
/// read-only view).
pub struct IndexFile {
    path: PathBuf,
    file: File,
    writable: bool,
    in_file: u64,
    pending: Vec<IndexEntry>,
}

impl IndexFile {
    /// Opens (creating if `writable`) and keeps at most `max` entries whose sequence
    /// numbers are 0, 1, 2, … (a damaged entry ends the usable prefix).
    pub fn open(path: &Path, writable: bool, max: u64) -> Result<IndexFile> {
        let file = if writable {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
        } else {
            File::open(path)
        }
        .map_err(|e| AuditError::io(path, e))?;
        let len = file.metadata().map_err(|e| AuditError::io(path, e))?.len();
        let mut n = (len / ENTRY_LEN as u64).min(max);
        // Unsynced entries may read back as zeros after a crash, and a reader may see a
        // batch half-written: keep the consistent prefix (stepping back a bounded distance,
        // else rebuilding everything).
        let mut steps = 0;
        while n > 0 {
            let mut b = [0u8; ENTRY_LEN];
            file.read_exact_at(&mut b, (n - 1) * ENTRY_LEN as u64)
                .map_err(|e| AuditError::io(path, e))?;
            if IndexEntry::decode(&b).seq == n - 1 {
                break;
            }
            n -= 1;
            steps += 1;
            if steps > 65_536 {
                n = 0;
            }
        }
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            file,
            writable,
            in_file: n,
            pending: Vec::new(),
        };
        if writable && n * ENTRY_LEN as u64 != len {
            idx.file
                .set_len(n * ENTRY_LEN as u64)
                .map_err(|e| AuditError::io(path, e))?;
        }
        idx.in_file = n;
        Ok(idx)
    }

    /// A view with no file.
    pub fn in_memory() -> IndexFile {
        IndexFile {
            path: PathBuf::new(),
            file: File::open("/dev/null").expect("/dev/null exists"),
            writable: false,
            in_file: 0,
            pending: Vec::new(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.in_file + self.pending.len() as u64
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends an entry (in memory until [`IndexFile::flush`]).
    pub fn push(&mut self, e: IndexEntry) {
        debug_assert_eq!(e.seq, self.len());
        self.pending.push(e);
    }

    /// Entry `i`.
    pub fn get(&self, i: u64) -> Result<IndexEntry> {
        if i < self.in_file {
            let mut b = [0u8; ENTRY_LEN];
            self.file
                .read_exact_at(&mut b, i * ENTRY_LEN as u64)
                .map_err(|e| AuditError::io(&self.path, e))?;
            Ok(IndexEntry::decode(&b))
        } else {
            self.pending
                .get((i - self.in_file) as usize)
                .copied()
                .ok_or_else(|| AuditError::Invalid(format!("no event with sequence {i}")))
        }
    }

    /// Reads entries `[from, to)` in one go.
    pub fn range(&self, from: u64, to: u64) -> Result<Vec<IndexEntry>> {
        let to = to.min(self.len());
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        if from < self.in_file {
            let end = to.min(self.in_file);
            let mut buf = vec![0u8; ((end - from) as usize) * ENTRY_LEN];
            self.file
                .read_exact_at(&mut buf, from * ENTRY_LEN as u64)
                .map_err(|e| AuditError::io(&self.path, e))?;
            out.extend(buf.chunks_exact(ENTRY_LEN).map(IndexEntry::decode));
        }
        for i in from.max(self.in_file)..to {
            out.push(self.pending[(i - self.in_file) as usize]);
        }
        Ok(out)
    }

    /// Writes pending entries (no fsync).
    pub fn flush(&mut self) -> Result<()> {
        if !self.writable || self.pending.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(self.pending.len() * ENTRY_LEN);
        for e in &self.pending {
            buf.extend_from_slice(&e.encode());
        }
        self.file
            .write_all_at(&buf, self.in_file * ENTRY_LEN as u64)
            .map_err(|e| AuditError::io(&self.path, e))?;
        self.in_file += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// A second handle on the file and its path, for a thread that only fdatasyncs what
    /// [`Self::flush`] wrote (the audit writer's sync stage).
    pub(crate) fn sync_handle(&self) -> Result<(std::fs::File, std::path::PathBuf)> {
        let f = self
            .file
            .try_clone()
            .map_err(|e| AuditError::io(&self.path, e))?;
        Ok((f, self.path.clone()))
    }

    /// Flushes and fdatasyncs.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        if self.writable {
            self.file
                .sync_data()
                .map_err(|e| AuditError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// First entry index whose timestamp is `>= ts_nanos` (timestamps never decrease).
    pub fn lower_bound_ts(&self, ts_nanos: i64) -> Result<u64> {
        let (mut lo, mut hi) = (0u64, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid)?.ts_nanos < ts_nanos {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}
