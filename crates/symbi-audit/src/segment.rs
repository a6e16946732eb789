//! Segment files: naming, listing and scanning (docs/audit-format.md §4).

use crate::error::{AuditError, Result};
use crate::record::{self, FrameError, Record, SEGMENT_HEADER_LEN};
use std::fmt;
use std::path::{Path, PathBuf};

/// Sub-directory of the audit directory that holds the segments.
pub const SEGMENTS_DIR: &str = "segments";

/// File name of the segment whose first record has sequence `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// A segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    /// Sequence number of its first record (from the file name).
    pub first_seq: u64,
    /// Path.
    pub path: PathBuf,
}

/// Segments of `audit_dir`, in sequence order. Files not named like segments are ignored.
pub fn list_segments(audit_dir: &Path) -> Result<Vec<SegmentFile>> {
    let dir = audit_dir.join(SEGMENTS_DIR);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(&dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| AuditError::io(&dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".seg")
            && stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
        {
            out.push(SegmentFile {
                first_seq: stem.parse().unwrap(),
                path: ent.path(),
            });
        }
    }
    out.sort_by_key(|s| s.first_seq);
    Ok(out)
}

/// Why a segment scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// The header is missing or wrong.
    Header,
    /// A frame could not be read.
    Frame(FrameError),
    /// The frame is intact but its payload is not a record.
    Payload(String),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Header => f.write_str("segment header is missing or damaged"),
            ScanError::Frame(e) => e.fmt(f),
            ScanError::Payload(m) => f.write_str(m),
        }
    }
}

/// One record found in a segment.
#[derive(Clone, Debug)]
pub struct ScannedRecord {
    /// Offset of its frame in the file.
    pub offset: u64,
    /// Length of the frame (header included).
    pub frame_len: u32,
    /// The record.
    pub record: Record,
}

/// Result of reading a segment front to back.
#[derive(Debug)]
pub struct SegmentScan {
    /// First sequence number from the header (if the header is intact).
    pub header_seq: Option<u64>,
    /// Intact records in order.
    pub records: Vec<ScannedRecord>,
    /// Offset just after the last intact record.
    pub end: u64,
    /// Why the scan stopped early, and where.
    pub error: Option<(u64, ScanError)>,
    /// Whether the damage at `error` is a torn tail (nothing intact follows it).
    pub torn_tail: bool,
    /// File length.
    pub len: u64,
}

/// Reads every intact record of a segment's bytes.
pub fn scan_bytes(buf: &[u8]) -> SegmentScan {
    let mut s = SegmentScan {
        header_seq: None,
        records: Vec::new(),
        end: 0,
        error: None,
        torn_tail: false,
        len: buf.len() as u64,
    };
    let Some(first) = record::parse_segment_header(buf) else {
        s.error = Some((0, ScanError::Header));
        // A header cut short by a crash while the segment was being created.
        s.torn_tail = buf.len() < SEGMENT_HEADER_LEN
            && record::SEGMENT_MAGIC.starts_with(&buf[..buf.len().min(8)]);
        return s;
    };
    s.header_seq = Some(first);
    let mut off = SEGMENT_HEADER_LEN;
    s.end = off as u64;
    loop {
        match record::read_frame(buf, off) {
            Ok(None) => break,
            Ok(Some((payload, next))) => match Record::decode_payload(payload) {
                Ok(record) => {
                    s.records.push(ScannedRecord {
                        offset: off as u64,
                        frame_len: (next - off) as u32,
                        record,
                    });
                    off = next;
                    s.end = off as u64;
                }
                Err(m) => {
                    s.error = Some((off as u64, ScanError::Payload(m)));
                    break;
                }
            },
            Err(e) => {
                s.torn_tail = record::is_torn_tail(buf, off);
                s.error = Some((off as u64, ScanError::Frame(e)));
                break;
            }
        }
    }
    s
}

/// Reads a whole segment file and scans it.
pub fn scan_file(path: &Path) -> Result<SegmentScan> {
    let buf = std::fs::read(path).map_err(|e| AuditError::io(path, e))?;
    Ok(scan_bytes(&buf))
}
