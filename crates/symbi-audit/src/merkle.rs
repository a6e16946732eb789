//! RFC 9162 Merkle tree hashing, inclusion and consistency proofs (§2.1), compact ranges,
//! and the append-only post-order hash file that makes proofs O(log² n) reads at any size.
//!
//! Hashing: `leaf = SHA-256(0x00 ‖ entry)`, `node = SHA-256(0x01 ‖ left ‖ right)`, the
//! empty tree's root is `SHA-256("")`. For `n > 1` leaves the root is
//! `node(MTH(D[0:k]), MTH(D[k:n]))` with `k` the largest power of two below `n`.
//!
//! ```
//! use symbi_audit::merkle::*;
//! let p = symbi_crypto::provider("ring").unwrap();
//! let leaves: Vec<Hash> = (0..5u8).map(|i| leaf_hash(&*p, &[i])).collect();
//! let src = MemoryTree::new(&*p, &leaves);
//! let root = subtree_root(&*p, &src, 0, 5).unwrap();
//! let proof = inclusion_proof(&*p, &src, 3, 5).unwrap();
//! verify_inclusion(&*p, &leaves[3], 3, 5, &proof, &root).unwrap();
//! ```

use crate::error::{AuditError, Result};
pub use crate::record::Hash;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use symbi_crypto::CryptoProvider;

/// `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(p: &dyn CryptoProvider, entry: &[u8]) -> Hash {
    p.sha256_parts(&[&[0u8], entry])
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(p: &dyn CryptoProvider, left: &Hash, right: &Hash) -> Hash {
    p.sha256_parts(&[&[1u8], left, right])
}

/// Root of the empty tree, `SHA-256("")`.
pub fn empty_root(p: &dyn CryptoProvider) -> Hash {
    p.sha256(b"")
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Where perfect subtree hashes come from: `perfect(level, index)` is the root of leaves
/// `[index·2^level, (index+1)·2^level)`.
pub trait NodeSource {
    /// Hash of a complete, aligned subtree.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash>;
}

/// `MTH(D[start:end])` for a range whose start is aligned as in RFC 9162's recursion.
pub fn subtree_root(
    p: &dyn CryptoProvider,
    src: &dyn NodeSource,
    start: u64,
    end: u64,
) -> Result<Hash> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root(p));
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.perfect(n.trailing_zeros(), start / n);
    }
    let k = split(n);
    let l = subtree_root(p, src, start, start + k)?;
    let r = subtree_root(p, src, start + k, end)?;
    Ok(node_hash(p, &l, &r))
}

/// RFC 9162 §2.1.3.1 `PATH(m, D[n])`: the inclusion proof of leaf `m` in the tree of size `n`.
pub fn inclusion_proof(
    p: &dyn CryptoProvider,
    src: &dyn NodeSource,
    m: u64,
    n: u64,
) -> Result<Vec<Hash>> {
    if m >= n {
        return Err(AuditError::Invalid(format!(
            "leaf {m} is not in a tree of size {n}"
        )));
    }
    fn path(
        p: &dyn CryptoProvider,
        src: &dyn NodeSource,
        m: u64,
        start: u64,
        n: u64,
        out: &mut Vec<Hash>,
    ) -> Result<()> {
        if n == 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            path(p, src, m, start, k, out)?;
            out.push(subtree_root(p, src, start + k, start + n)?);
        } else {
            path(p, src, m - k, start + k, n - k, out)?;
            out.push(subtree_root(p, src, start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    path(p, src, m, 0, n, &mut out)?;
    Ok(out)
}

/// RFC 9162 §2.1.4.1 `PROOF(m, D[n])`: the consistency proof between sizes `m <= n`.
pub fn consistency_proof(
    p: &dyn CryptoProvider,
    src: &dyn NodeSource,
    m: u64,
    n: u64,
) -> Result<Vec<Hash>> {
    if m > n {
        return Err(AuditError::Invalid(format!(
            "old size {m} is larger than new size {n}"
        )));
    }
    if m == 0 || m == n {
        return Ok(Vec::new());
    }
    fn sub(
        p: &dyn CryptoProvider,
        src: &dyn NodeSource,
        m: u64,
        start: u64,
        n: u64,
        b: bool,
        out: &mut Vec<Hash>,
    ) -> Result<()> {
        if m == n {
            if !b {
                out.push(subtree_root(p, src, start, start + n)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            sub(p, src, m, start, k, b, out)?;
            out.push(subtree_root(p, src, start + k, start + n)?);
        } else {
            sub(p, src, m - k, start + k, n - k, false, out)?;
            out.push(subtree_root(p, src, start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    sub(p, src, m, 0, n, true, &mut out)?;
    Ok(out)
}

fn fail(msg: &str) -> AuditError {
    AuditError::Verification(msg.to_string())
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` is leaf `index` of the tree of `size` with `root`.
pub fn verify_inclusion(
    p: &dyn CryptoProvider,
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    if index >= size {
        return Err(fail("leaf index is not below the tree size"));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for h in proof {
        if sn == 0 {
            return Err(fail("inclusion proof is too long"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, h, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(p, &r, h);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(fail("inclusion proof is too short"));
    }
    if &r != root {
        return Err(fail(
            "inclusion proof does not lead to the checkpoint's root hash",
        ));
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `new_size`/`new_root` extends the tree of
/// `old_size`/`old_root`.
pub fn verify_consistency(
    p: &dyn CryptoProvider,
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if old_size > new_size {
        return Err(fail("old size is larger than new size"));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(fail("a proof between equal sizes must be empty"));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(fail("equal sizes but different roots"))
        };
    }
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(fail("a proof from the empty tree must be empty"))
        };
    }
    if proof.is_empty() {
        return Err(fail("consistency proof is empty"));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(fail("consistency proof is too long"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(p, c, &fr);
            sr = node_hash(p, c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(p, &sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(fail("consistency proof is too short"));
    }
    if &fr != old_root {
        return Err(fail("consistency proof does not reproduce the old root"));
    }
    if &sr != new_root {
        return Err(fail("consistency proof does not reproduce the new root"));
    }
    Ok(())
}

/// The roots of the perfect subtrees that make up a tree of `size` leaves (one per set bit
/// of `size`, largest first). Enough to compute the root and to keep appending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The empty range.
    pub fn new() -> Self {
        Self::default()
    }

    /// The range of a tree of `size` leaves read from `src`.
    pub fn from_source(src: &dyn NodeSource, size: u64) -> Result<Self> {
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                peaks.push(src.perfect(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Self { size, peaks })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; `emit` receives the leaf and every completed parent, in
    /// post-order (the order of the hash file).
    pub fn push(&mut self, p: &dyn CryptoProvider, leaf: Hash, mut emit: impl FnMut(&Hash)) {
        let mut cur = leaf;
        emit(&cur);
        let mut s = self.size;
        while s & 1 == 1 {
            let left = self.peaks.pop().expect("a set bit has a peak");
            cur = node_hash(p, &left, &cur);
            emit(&cur);
            s >>= 1;
        }
        self.peaks.push(cur);
        self.size += 1;
    }

    /// The tree's root hash.
    pub fn root(&self, p: &dyn CryptoProvider) -> Hash {
        let Some((last, rest)) = self.peaks.split_last() else {
            return empty_root(p);
        };
        rest.iter().rev().fold(*last, |r, l| node_hash(p, l, &r))
    }
}

/// Number of hashes in the post-order file of a tree with `n` leaves: `2n − popcount(n)`.
pub fn postorder_len(n: u64) -> u64 {
    2 * n - n.count_ones() as u64
}

/// Position of the perfect subtree `(level, index)` in post-order: it follows its last leaf
/// `L = (index+1)·2^level − 1` (at `2L − popcount(L)`) and the `level` parents completed with it.
pub fn postorder_pos(level: u32, index: u64) -> u64 {
    let last = ((index + 1) << level) - 1;
    2 * last - last.count_ones() as u64 + level as u64
}

/// Leaves in a tree whose post-order file holds `nodes` hashes (the largest `n` with
/// `postorder_len(n) <= nodes`).
pub fn leaves_for_nodes(nodes: u64) -> u64 {
    // postorder_len is increasing; n is within [nodes/2, nodes/2 + 64].
    let mut n = nodes / 2 + 64;
    while n > 0 && postorder_len(n) > nodes {
        n -= 1;
    }
    n
}

/// Leaf hashes in memory (tests, small trees).
pub struct MemoryTree<'a> {
    p: &'a dyn CryptoProvider,
    leaves: &'a [Hash],
}

impl<'a> MemoryTree<'a> {
    /// A source over `leaves`.
    pub fn new(p: &'a dyn CryptoProvider, leaves: &'a [Hash]) -> Self {
        Self { p, leaves }
    }
}

impl NodeSource for MemoryTree<'_> {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash> {
        let (s, e) = ((index << level) as usize, ((index + 1) << level) as usize);
        if e > self.leaves.len() {
            return Err(AuditError::Invalid("subtree beyond the tree".into()));
        }
        fn mth(p: &dyn CryptoProvider, l: &[Hash]) -> Hash {
            if l.len() == 1 {
                return l[0];
            }
            let k = l.len() / 2;
            node_hash(p, &mth(p, &l[..k]), &mth(p, &l[k..]))
        }
        Ok(mth(self.p, &self.leaves[s..e]))
    }
}

/// The append-only post-order hash file (`tree.hashes`): every leaf hash followed by the
/// parents it completes. Derived data, rebuilt from the segments when missing or damaged.
/// A read-only view keeps hashes beyond the file's end in memory.
pub struct TreeStore {
    path: PathBuf,
    file: File,
    writable: bool,
    /// Hashes in the file.
    file_nodes: u64,
    /// Hashes after the file's end (not yet written, or never for a read-only view).
    pending: Vec<Hash>,
    range: CompactRange,
}

impl TreeStore {
    /// Opens (creating if `writable`) the file and keeps the whole leaves it holds, up to
    /// `max_leaves`.
    pub fn open(path: &Path, writable: bool, max_leaves: u64) -> Result<TreeStore> {
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
        let leaves = leaves_for_nodes(len / 32).min(max_leaves);
        let file_nodes = postorder_len(leaves);
        if writable && file_nodes * 32 != len {
            file.set_len(file_nodes * 32)
                .map_err(|e| AuditError::io(path, e))?;
        }
        let mut t = TreeStore {
            path: path.to_path_buf(),
            file,
            writable,
            file_nodes,
            pending: Vec::new(),
            range: CompactRange::new(),
        };
        t.range = CompactRange::from_source(&t, leaves)?;
        Ok(t)
    }

    /// A view with no file (read-only callers when `tree.hashes` is missing).
    pub fn in_memory() -> TreeStore {
        TreeStore {
            path: PathBuf::new(),
            file: File::open("/dev/null").expect("/dev/null exists"),
            writable: false,
            file_nodes: 0,
            pending: Vec::new(),
            range: CompactRange::new(),
        }
    }

    /// Number of leaves.
    pub fn leaves(&self) -> u64 {
        self.range.size()
    }

    /// The current compact range (root of the whole tree via [`CompactRange::root`]).
    pub fn range(&self) -> &CompactRange {
        &self.range
    }

    /// Appends a leaf hash (to memory; [`TreeStore::flush`] writes it).
    pub fn push(&mut self, p: &dyn CryptoProvider, leaf: Hash) {
        let pending = &mut self.pending;
        self.range.push(p, leaf, |h| pending.push(*h));
    }

    /// Writes pending hashes to the file (no fsync).
    pub fn flush(&mut self) -> Result<()> {
        if !self.writable || self.pending.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(self.pending.len() * 32);
        for h in &self.pending {
            buf.extend_from_slice(h);
        }
        self.file
            .write_all_at(&buf, self.file_nodes * 32)
            .map_err(|e| AuditError::io(&self.path, e))?;
        self.file_nodes += self.pending.len() as u64;
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

    /// Drops everything after `leaves` leaves.
    pub fn truncate(&mut self, leaves: u64) -> Result<()> {
        let nodes = postorder_len(leaves);
        if nodes < self.file_nodes {
            if self.writable {
                self.file
                    .set_len(nodes * 32)
                    .map_err(|e| AuditError::io(&self.path, e))?;
            }
            self.file_nodes = nodes;
            self.pending.clear();
        } else {
            self.pending.truncate((nodes - self.file_nodes) as usize);
        }
        self.range = CompactRange::from_source(self, leaves)?;
        Ok(())
    }

    fn node(&self, pos: u64) -> Result<Hash> {
        if pos < self.file_nodes {
            let mut h = [0u8; 32];
            self.file
                .read_exact_at(&mut h, pos * 32)
                .map_err(|e| AuditError::io(&self.path, e))?;
            Ok(h)
        } else {
            self.pending
                .get((pos - self.file_nodes) as usize)
                .copied()
                .ok_or_else(|| AuditError::Invalid(format!("tree node {pos} is beyond the tree")))
        }
    }
}

impl NodeSource for TreeStore {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash> {
        self.node(postorder_pos(level, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> std::sync::Arc<dyn CryptoProvider> {
        symbi_crypto::provider("ring").unwrap()
    }

    /// The leaves of the Certificate Transparency / transparency-dev test vectors.
    fn ct_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    #[test]
    fn roots_match_ct_vectors() {
        // Roots of the first 1..=8 leaves (RFC 6962 / transparency-dev/merkle test data).
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let p = p();
        let leaves: Vec<Hash> = ct_leaves().iter().map(|l| leaf_hash(&*p, l)).collect();
        let src = MemoryTree::new(&*p, &leaves);
        let mut cr = CompactRange::new();
        for (i, root) in roots.iter().enumerate() {
            cr.push(&*p, leaves[i], |_| {});
            assert_eq!(
                hex::encode(subtree_root(&*p, &src, 0, i as u64 + 1).unwrap()),
                *root,
                "size {}",
                i + 1
            );
            assert_eq!(hex::encode(cr.root(&*p)), *root);
        }
        assert_eq!(
            hex::encode(empty_root(&*p)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn proofs_match_ct_vectors() {
        let p = p();
        let leaves: Vec<Hash> = ct_leaves().iter().map(|l| leaf_hash(&*p, l)).collect();
        let src = MemoryTree::new(&*p, &leaves);
        // Inclusion proofs (leaf, size, path) from the RFC 6962 reference test data.
        let inclusion: &[(u64, u64, &[&str])] = &[
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (m, n, want) in inclusion {
            let got = inclusion_proof(&*p, &src, *m, *n).unwrap();
            assert_eq!(
                got.iter().map(hex::encode).collect::<Vec<_>>(),
                *want,
                "inclusion {m} in {n}"
            );
            let root = subtree_root(&*p, &src, 0, *n).unwrap();
            verify_inclusion(&*p, &leaves[*m as usize], *m, *n, &got, &root).unwrap();
        }
        let consistency: &[(u64, u64, &[&str])] = &[
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (m, n, want) in consistency {
            let got = consistency_proof(&*p, &src, *m, *n).unwrap();
            assert_eq!(
                got.iter().map(hex::encode).collect::<Vec<_>>(),
                *want,
                "consistency {m}→{n}"
            );
            let (r1, r2) = (
                subtree_root(&*p, &src, 0, *m).unwrap(),
                subtree_root(&*p, &src, 0, *n).unwrap(),
            );
            verify_consistency(&*p, *m, *n, &r1, &r2, &got).unwrap();
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        let p = p();
        let leaves: Vec<Hash> = (0..33u32)
            .map(|i| leaf_hash(&*p, &i.to_be_bytes()))
            .collect();
        let src = MemoryTree::new(&*p, &leaves);
        for n in 1..=33u64 {
            let root = subtree_root(&*p, &src, 0, n).unwrap();
            for m in 0..n {
                let proof = inclusion_proof(&*p, &src, m, n).unwrap();
                verify_inclusion(&*p, &leaves[m as usize], m, n, &proof, &root).unwrap();
                assert!(
                    verify_inclusion(&*p, &leaves[(m as usize + 1) % 33], m, n, &proof, &root)
                        .is_err()
                );
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_inclusion(&*p, &leaves[m as usize], m, n, &bad, &root).is_err());
                }
                let old = subtree_root(&*p, &src, 0, m + 1).unwrap();
                let cp = consistency_proof(&*p, &src, m + 1, n).unwrap();
                verify_consistency(&*p, m + 1, n, &old, &root, &cp).unwrap();
                if !cp.is_empty() {
                    let mut bad = cp.clone();
                    let last = bad.len() - 1;
                    bad[last][5] ^= 1;
                    assert!(verify_consistency(&*p, m + 1, n, &old, &root, &bad).is_err());
                }
            }
        }
    }

    #[test]
    fn hash_file_matches_memory_and_survives_reopen() {
        let p = p();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree.hashes");
        let leaves: Vec<Hash> = (0..100u32)
            .map(|i| leaf_hash(&*p, &i.to_be_bytes()))
            .collect();
        let mut t = TreeStore::open(&path, true, u64::MAX).unwrap();
        for (i, l) in leaves.iter().enumerate() {
            t.push(&*p, *l);
            if i % 7 == 0 {
                t.flush().unwrap();
            }
        }
        t.flush().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            postorder_len(100) * 32
        );
        let mem = MemoryTree::new(&*p, &leaves);
        let t = TreeStore::open(&path, false, u64::MAX).unwrap();
        assert_eq!(t.leaves(), 100);
        for n in [1u64, 2, 3, 64, 99, 100] {
            assert_eq!(
                subtree_root(&*p, &t, 0, n).unwrap(),
                subtree_root(&*p, &mem, 0, n).unwrap()
            );
            assert_eq!(
                inclusion_proof(&*p, &t, n - 1, n).unwrap(),
                inclusion_proof(&*p, &mem, n - 1, n).unwrap()
            );
        }
        let mut t = TreeStore::open(&path, true, 37).unwrap();
        assert_eq!(t.leaves(), 37);
        assert_eq!(t.range().root(&*p), subtree_root(&*p, &mem, 0, 37).unwrap());
        t.truncate(10).unwrap();
        assert_eq!(t.range().root(&*p), subtree_root(&*p, &mem, 0, 10).unwrap());
        for n in 1..200u64 {
            for nodes in postorder_len(n)..postorder_len(n + 1) {
                assert_eq!(leaves_for_nodes(nodes), n);
            }
        }
    }
}
