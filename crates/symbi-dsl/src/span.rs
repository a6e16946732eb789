//! Byte spans and the mapping from byte offsets to 1-based line:column positions.
//!
//! A [`Span`] is a half-open byte range `start..end` into the source text, stored as two
//! `u32` so that every AST node pays 8 bytes for its position (files are limited to
//! 4 GiB − 1; see [`MAX_SOURCE_LEN`]).
//!
//! Positions follow GRAMMAR §1.1: lines count from 1 and end at LF, CR LF (one
//! terminator) or a lone CR; columns count from 1 in Unicode scalar values (a tab is one
//! column). A byte-order mark at the start of the file is not part of line 1's columns.
//!
//! ```
//! use symbi_dsl::span::{LineIndex, Span};
//! let src = "a\r\nbé c";
//! let idx = LineIndex::new(src);
//! // `c` is byte 7: line 2, column 4 (`b`, `é`, ` ` come first).
//! assert_eq!(idx.line_col(src, 7), (2, 4));
//! assert_eq!(Span::new(3, 4).len(), 1);
//! ```

use serde::Serialize;

/// The largest source text (in bytes) that spans can address.
pub const MAX_SOURCE_LEN: usize = u32::MAX as usize - 1;

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    #[inline]
    pub const fn new(start: u32, end: u32) -> Span {
        Span { start, end }
    }

    /// An empty span at `offset` (used for "missing token" positions).
    #[inline]
    pub const fn point(offset: u32) -> Span {
        Span {
            start: offset,
            end: offset,
        }
    }

    /// The smallest span covering both.
    #[inline]
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    #[inline]
    pub const fn len(self) -> u32 {
        self.end - self.start
    }

    /// Whether the span covers no byte.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// Whether `offset` lies inside the span (start inclusive, end exclusive).
    #[inline]
    pub const fn contains(self, offset: u32) -> bool {
        self.start <= offset && offset < self.end
    }

    /// As a `usize` range for slicing the source text.
    #[inline]
    pub const fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The text the span covers (empty if out of bounds, never panics).
    #[inline]
    pub fn text(self, source: &str) -> &str {
        source.get(self.range()).unwrap_or("")
    }
}

/// Start offsets of every line of one source text, for offset → line:column mapping.
///
/// Building it is one pass over the bytes; a lookup is a binary search plus counting the
/// scalar values between the line start and the offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineIndex {
    /// Byte offset where each line starts; `line_starts[0]` is 0 (or 3 after a BOM).
    line_starts: Vec<u32>,
}

impl LineIndex {
    /// Indexes `source`.
    pub fn new(source: &str) -> LineIndex {
        let bytes = source.as_bytes();
        let first = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        let mut line_starts = Vec::with_capacity(bytes.len() / 32 + 1);
        line_starts.push(first);
        let mut i = first as usize;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => line_starts.push(i as u32 + 1),
                b'\r' => {
                    if bytes.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    line_starts.push(i as u32 + 1);
                }
                _ => {}
            }
            i += 1;
        }
        LineIndex { line_starts }
    }

    /// Number of lines (a file ending with a line terminator has an empty last line).
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The 0-based line that contains byte `offset`.
    pub fn line_of(&self, offset: u32) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// 1-based (line, column) of byte `offset` in `source` (the text this index was built
    /// from). Offsets inside a multi-byte character or past the end are clamped.
    pub fn line_col(&self, source: &str, offset: u32) -> (u32, u32) {
        let offset = offset.min(source.len() as u32);
        let line = self.line_of(offset);
        let start = self.line_starts[line].min(offset) as usize;
        let mut end = offset as usize;
        while end > start && !source.is_char_boundary(end) {
            end -= 1;
        }
        let col = source[start..end].chars().count() as u32 + 1;
        (line as u32 + 1, col)
    }

    /// Byte range of 0-based `line`, without its terminator.
    pub fn line_range(&self, source: &str, line: usize) -> std::ops::Range<usize> {
        let start = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(source.len() as u32) as usize;
        let next = self
            .line_starts
            .get(line + 1)
            .map(|&s| s as usize)
            .unwrap_or(source.len());
        let bytes = source.as_bytes();
        let mut end = next.max(start);
        while end > start && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        start..end
    }

    /// Whether byte `offset` is the first byte of its line (column 1).
    pub fn is_line_start(&self, offset: u32) -> bool {
        self.line_starts.binary_search(&offset).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_crlf_and_lone_cr_end_lines() {
        let src = "a\nb\r\nc\rd";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_count(), 4);
        assert_eq!(idx.line_col(src, 0), (1, 1));
        assert_eq!(idx.line_col(src, 2), (2, 1));
        assert_eq!(idx.line_col(src, 5), (3, 1));
        assert_eq!(idx.line_col(src, 7), (4, 1));
        // The LF of a CR LF pair belongs to line 2 (after `b` and CR).
        assert_eq!(idx.line_col(src, 4), (2, 3));
    }

    #[test]
    fn columns_count_scalar_values_and_tabs_once() {
        let src = "\té😀x";
        let idx = LineIndex::new(src);
        let x = src.find('x').unwrap() as u32;
        assert_eq!(idx.line_col(src, x), (1, 4));
    }

    #[test]
    fn bom_is_not_a_column() {
        let src = "\u{feff}ab";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(src, 3), (1, 1));
        assert_eq!(idx.line_col(src, 4), (1, 2));
        assert!(idx.is_line_start(3));
    }

    #[test]
    fn end_of_file_after_newline_is_next_line() {
        let src = "ab\n";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(src, 3), (2, 1));
        assert_eq!(idx.line_range(src, 0), 0..2);
        assert_eq!(idx.line_range(src, 1), 3..3);
    }

    #[test]
    fn span_helpers() {
        let s = Span::new(2, 5).to(Span::new(4, 9));
        assert_eq!(s, Span::new(2, 9));
        assert!(s.contains(8) && !s.contains(9));
        assert_eq!(Span::new(1, 3).text("abcd"), "bc");
        assert_eq!(Span::new(1, 30).text("abcd"), "");
    }
}
