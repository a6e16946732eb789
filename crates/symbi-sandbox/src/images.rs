//! Sandbox images, built locally with no registry access and verified before use.
//!
//! Two images exist:
//!
//! * `busybox` — `FROM scratch` plus the statically linked `/bin/busybox` of Debian's
//!   `busybox-static` package, one symlink per applet in `/bin`, `/etc/passwd` with
//!   `nobody` (65534) and an empty `/tmp`.
//! * `debian` — a minimal Debian root file system made by `debootstrap --variant=minbase
//!   --include=jq` (the tarball is cached under `/var/cache/symbi/images/`), for tools that
//!   need a libc userland. Set-uid/set-gid bits are stripped and `/dev`, `/proc`, `/sys`,
//!   apt lists and logs are left empty.
//!
//! **Content addressing.** Each image is written as a `docker save` archive whose one layer
//! is a deterministic tar (sorted names, zero timestamps) and whose configuration JSON is
//! generated here; Docker checks the layer against the configuration's `diff_ids` when it
//! loads the archive, and the image id is the SHA-256 of that configuration. The tag is
//! `symbi/<name>:sha256-<image id>`; the record `<data dir>/images/<name>.json` keeps the id
//! and layer digests. Before use the sandbox inspects the tag and requires the id and the
//! layers to equal the record (a mismatch fails closed), then creates containers **by
//! id** (`sha256:…`), so re-tagging an image later cannot change what runs.

use crate::error::{Result, SandboxError};
use bollard::Docker;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use symbi_types::SandboxTier;

/// A built image, as recorded in `<data dir>/images/<name>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `busybox` or `debian`.
    pub name: String,
    /// The tag (`symbi/busybox:sha256-…`).
    pub reference: String,
    /// The image id (`sha256:…`), the digest of the configuration.
    pub image_id: String,
    /// Layer digests (`sha256:…` of the uncompressed layer tars).
    pub layers: Vec<String>,
    /// What it was built from (path and SHA-256 of the source).
    pub source: String,
    /// Unix time of the build.
    pub built_at: u64,
}

/// Where images are recorded and their inputs cached.
#[derive(Clone, Debug)]
pub struct ImageStore {
    /// `<data dir>/images`.
    pub records_dir: PathBuf,
    /// Cache of slow inputs (the debootstrap tarball): `/var/cache/symbi/images` by
    /// default, `SYMBI_IMAGE_CACHE` to change it.
    pub cache_dir: PathBuf,
}

/// The default cache directory.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("SYMBI_IMAGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/symbi/images"))
}

fn image_err(image: &str, message: impl Into<String>) -> SandboxError {
    SandboxError::Image {
        image: image.to_string(),
        message: message.into(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| SandboxError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SandboxError::io(path, e)
    })
}

/// A deterministic tar: entries in the order added, every timestamp zero, numeric owners.
struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl LayerTar {
    fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> std::io::Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, mode, uid, gid, 0);
        self.builder
            .append_data(&mut h, format!("{path}/"), std::io::empty())
    }

    fn file(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        data: &[u8],
    ) -> std::io::Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, mode, uid, gid, data.len() as u64);
        self.builder.append_data(&mut h, path, data)
    }

    fn symlink(&mut self, path: &str, target: &Path, uid: u64, gid: u64) -> std::io::Result<()> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, uid, gid, 0);
        self.builder.append_link(&mut h, path, target)
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        self.builder.into_inner()
    }
}

/// Whether an ELF file is statically linked (no `PT_INTERP` program header).
fn elf_is_static(bytes: &[u8]) -> std::result::Result<bool, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("only 64-bit little-endian ELF is supported".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > bytes.len() {
            return Err("truncated program headers".into());
        }
        if u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes")) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Builds the busybox layer from a static busybox binary.
fn busybox_layer(busybox: &Path) -> Result<(Vec<u8>, String)> {
    let bin = std::fs::read(busybox).map_err(|e| {
        image_err("busybox", format!("cannot read {}: {e}; install it with `apt-get install busybox-static` (or run `sudo ./scripts/setup-host.sh`)", busybox.display()))
    })?;
    match elf_is_static(&bin) {
        Ok(true) => {}
        Ok(false) => {
            return Err(image_err(
                "busybox",
                format!(
                    "{} is dynamically linked; the scratch image needs the static one: `apt-get install busybox-static`",
                    busybox.display()
                ),
            ));
        }
        Err(e) => return Err(image_err("busybox", format!("{}: {e}", busybox.display()))),
    }
    // The applet list comes from the (trusted, package-installed) binary itself.
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| {
            image_err(
                "busybox",
                format!("cannot run {} --list: {e}", busybox.display()),
            )
        })?;
    let mut applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.[".contains(c))
                && *a != "busybox"
        })
        .map(str::to_string)
        .collect();
    applets.sort();
    applets.dedup();
    if applets.len() < 20 {
        return Err(image_err(
            "busybox",
            format!(
                "{} --list printed only {} applets",
                busybox.display(),
                applets.len()
            ),
        ));
    }
    let build = || -> std::io::Result<Vec<u8>> {
        let mut t = LayerTar::new();
        t.dir("bin", 0o755, 0, 0)?;
        t.file("bin/busybox", 0o755, 0, 0, &bin)?;
        for a in &applets {
            t.symlink(&format!("bin/{a}"), Path::new("busybox"), 0, 0)?;
        }
        t.dir("dev", 0o755, 0, 0)?;
        t.dir("etc", 0o755, 0, 0)?;
        t.file("etc/group", 0o644, 0, 0, GROUP.as_bytes())?;
        t.file("etc/passwd", 0o644, 0, 0, PASSWD.as_bytes())?;
        t.dir("proc", 0o555, 0, 0)?;
        t.dir("sys", 0o555, 0, 0)?;
        t.dir("tmp", 0o1777, 0, 0)?;
        t.finish()
    };
    let layer = build().map_err(|e| image_err("busybox", format!("writing the layer: {e}")))?;
    Ok((
        layer,
        format!("{} sha256:{}", busybox.display(), sha256_hex(&bin)),
    ))
}

/// Paths (relative, no leading `/`) whose *contents* are left out of the Debian layer.
const DEBIAN_EMPTY_DIRS: [&str; 8] = [
    "dev",
    "proc",
    "sys",
    "run",
    "tmp",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/log",
];

/// Writes a deterministic tar of a root file system directory.
fn rootfs_tar(root: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    fn walk(t: &mut LayerTar, root: &Path, rel: &Path) -> std::io::Result<()> {
        let dir = root.join(rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let r = rel.join(&name);
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p)?;
            let rs = r.to_string_lossy().to_string();
            // Set-uid/set-gid bits are stripped: nothing in a sandbox may gain privileges.
            let mode = md.mode() & 0o1777;
            let ft = md.file_type();
            if ft.is_dir() {
                t.dir(&rs, mode, md.uid() as u64, md.gid() as u64)?;
                if !DEBIAN_EMPTY_DIRS.contains(&rs.as_str()) {
                    walk(t, root, &r)?;
                }
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&p)?;
                t.symlink(&rs, &target, md.uid() as u64, md.gid() as u64)?;
            } else if ft.is_file() {
                if rs == "etc/machine-id" {
                    t.file(&rs, 0o444, 0, 0, b"")?;
                    continue;
                }
                let data = std::fs::read(&p)?;
                t.file(&rs, mode, md.uid() as u64, md.gid() as u64, &data)?;
            }
            // Devices, fifos and sockets are left out: Docker provides /dev.
        }
        Ok(())
    }
    let mut t = LayerTar::new();
    walk(&mut t, root, Path::new(""))?;
    t.finish()
}

/// The cached Debian root file system tarball, made with debootstrap when missing.
fn debian_rootfs(cache_dir: &Path) -> Result<PathBuf> {
    let tarball = cache_dir.join("debian-bookworm-minbase-jq.tar");
    if tarball.is_file() {
        return Ok(tarball);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| SandboxError::io(cache_dir, e))?;
    let debootstrap = ["/usr/sbin/debootstrap", "/usr/bin/debootstrap"].into_iter().find(|p| Path::new(p).exists()).ok_or_else(|| {
        image_err("debian", "debootstrap is not installed: run `sudo ./scripts/setup-host.sh` (or `apt-get install debootstrap`)")
    })?;
    let staging = cache_dir.join(format!("debian-staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let mirror = std::env::var("SYMBI_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let debs = cache_dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| SandboxError::io(&debs, e))?;
    tracing::info!(mirror, staging = %staging.display(), "running debootstrap (minbase + jq)");
    let status = std::process::Command::new(debootstrap)
        .arg("--variant=minbase")
        .arg("--include=jq")
        .arg(format!("--cache-dir={}", debs.display()))
        .arg("bookworm")
        .arg(&staging)
        .arg(&mirror)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| image_err("debian", format!("cannot run debootstrap: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(image_err(
            "debian",
            format!(
                "debootstrap failed ({status}); it needs root and access to {mirror} (set SYMBI_DEBIAN_MIRROR for another mirror)"
            ),
        ));
    }
    let bytes = rootfs_tar(&staging)
        .map_err(|e| image_err("debian", format!("packing {}: {e}", staging.display())))?;
    let _ = std::fs::remove_dir_all(&staging);
    write_atomic(&tarball, &bytes)?;
    Ok(tarball)
}

fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Builds a `docker save` archive for one layer; returns (archive, image id hex, layer hex).
fn save_archive(
    name: &str,
    layer: &[u8],
    env_path: &str,
    comment: &str,
) -> std::io::Result<(Vec<u8>, String, String)> {
    let layer_hex = sha256_hex(layer);
    let config = json!({
        "architecture": docker_arch(),
        "os": "linux",
        "config": {
            "User": "65534:65534",
            "Env": [format!("PATH={env_path}")],
            "WorkingDir": "/tmp",
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_hex}")] },
        "history": [{ "created_by": comment }],
    });
    let config_bytes = serde_json::to_vec(&config).map_err(std::io::Error::other)?;
    let id_hex = sha256_hex(&config_bytes);
    let reference = format!("symbi/{name}:sha256-{id_hex}");
    let manifest = json!([{
        "Config": format!("{id_hex}.json"),
        "RepoTags": [reference],
        "Layers": [format!("{layer_hex}/layer.tar")],
    }]);
    let mut t = LayerTar::new();
    t.file(&format!("{id_hex}.json"), 0o644, 0, 0, &config_bytes)?;
    t.dir(&layer_hex, 0o755, 0, 0)?;
    t.file(&format!("{layer_hex}/layer.tar"), 0o644, 0, 0, layer)?;
    t.file(
        "manifest.json",
        0o644,
        0,
        0,
        &serde_json::to_vec(&manifest).map_err(std::io::Error::other)?,
    )?;
    Ok((t.finish()?, id_hex, layer_hex))
}

impl ImageStore {
    /// A store recording under `<data_dir>/images` with the default cache.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            records_dir: data_dir.join("images"),
            cache_dir: default_cache_dir(),
        }
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.records_dir.join(format!("{name}.json"))
    }

    /// The record of an image, if built.
    pub fn record(&self, name: &str) -> Result<Option<ImageRecord>> {
        let p = self.record_path(name);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| image_err(name, format!("{}: corrupt record: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SandboxError::io(p, e)),
        }
    }

    /// Builds (or confirms) image `name` and records it. Idempotent: when Docker already
    /// holds the same content-addressed image, nothing is loaded again.
    pub async fn build(&self, docker: &Docker, name: &str) -> Result<ImageRecord> {
        let (layer, source, path, comment) = match name {
            "busybox" => {
                let bb = Path::new("/bin/busybox");
                let (layer, source) = busybox_layer(bb)?;
                (
                    layer,
                    source,
                    "/bin",
                    "symbi tools build-images: scratch + busybox-static",
                )
            }
            "debian" => {
                let tarball = debian_rootfs(&self.cache_dir)?;
                let layer = std::fs::read(&tarball).map_err(|e| SandboxError::io(&tarball, e))?;
                let source = format!("{} sha256:{}", tarball.display(), sha256_hex(&layer));
                (
                    layer,
                    source,
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "symbi tools build-images: debootstrap minbase + jq",
                )
            }
            other => {
                return Err(image_err(
                    other,
                    format!(
                        "unknown image (known: {})",
                        crate::manifest::KNOWN_IMAGES.join(", ")
                    ),
                ));
            }
        };
        let (archive, id_hex, layer_hex) = save_archive(name, &layer, path, comment)
            .map_err(|e| image_err(name, format!("writing the archive: {e}")))?;
        drop(layer);
        let reference = format!("symbi/{name}:sha256-{id_hex}");
        let present = matches!(docker.inspect_image(&reference).await, Ok(i) if i.id.as_deref() == Some(&format!("sha256:{id_hex}")));
        if !present {
            let mut s = docker.import_image(
                bollard::query_parameters::ImportImageOptions::default(),
                bollard::body_full(archive.into()),
                None,
            );
            while let Some(item) = s.next().await {
                item.map_err(|e| image_err(name, format!("docker load failed: {e}")))?;
            }
        }
        let record = ImageRecord {
            name: name.to_string(),
            reference,
            image_id: format!("sha256:{id_hex}"),
            layers: vec![format!("sha256:{layer_hex}")],
            source,
            built_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        verify(docker, &record, SandboxTier::Tier1).await?;
        let mut bytes =
            serde_json::to_vec_pretty(&record).map_err(|e| image_err(name, e.to_string()))?;
        bytes.push(b'\n');
        write_atomic(&self.record_path(name), &bytes)?;
        Ok(record)
    }
}

/// Checks that Docker holds exactly the recorded image: the tag resolves to the recorded
/// id and the layers equal the recorded digests. Any difference fails closed as
/// `SandboxUnavailable` for `tier`.
pub async fn verify(docker: &Docker, record: &ImageRecord, tier: SandboxTier) -> Result<()> {
    let fix = "rebuild the images: `symbi tools build-images` (or ./scripts/build-images.sh)";
    let inspect = docker.inspect_image(&record.reference).await.map_err(|e| {
        SandboxError::unavailable(
            tier,
            format!(
                "image {} ({}) is not in Docker: {e}",
                record.name, record.reference
            ),
            fix,
        )
    })?;
    if inspect.id.as_deref() != Some(record.image_id.as_str()) {
        return Err(SandboxError::unavailable(
            tier,
            format!(
                "image {} does not match its record: tag {} is {} but {} was recorded",
                record.name,
                record.reference,
                inspect.id.unwrap_or_default(),
                record.image_id
            ),
            fix,
        ));
    }
    let layers = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
    if layers != record.layers {
        return Err(SandboxError::unavailable(
            tier,
            format!(
                "image {} has layers {layers:?}, recorded {:?}",
                record.name, record.layers
            ),
            fix,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_layer_is_deterministic() {
        let (a, _) = busybox_layer(Path::new("/bin/busybox")).unwrap();
        let (b, _) = busybox_layer(Path::new("/bin/busybox")).unwrap();
        assert_eq!(sha256_hex(&a), sha256_hex(&b));
        let (x, id1, _) = save_archive("busybox", &a, "/bin", "c").unwrap();
        let (y, id2, _) = save_archive("busybox", &b, "/bin", "c").unwrap();
        assert_eq!(id1, id2);
        assert_eq!(x, y);
    }

    #[test]
    fn dynamic_binaries_are_refused() {
        // /bin/sh on Debian is a dynamically linked dash.
        let e = busybox_layer(Path::new("/bin/true"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dynamically linked"), "{e}");
        let e = busybox_layer(Path::new("/nonexistent/busybox"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("busybox-static"), "{e}");
    }

    #[test]
    fn rootfs_tar_strips_setuid_and_devices() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::create_dir_all(d.path().join("var/log")).unwrap();
        std::fs::write(d.path().join("var/log/x.log"), "secret log").unwrap();
        let su = d.path().join("usr/bin/su");
        std::fs::write(&su, "x").unwrap();
        std::fs::set_permissions(&su, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let bytes = rootfs_tar(d.path()).unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().to_string();
            if p == "usr/bin/su" {
                assert_eq!(e.header().mode().unwrap(), 0o755);
            }
            assert_eq!(e.header().mtime().unwrap(), 0);
            seen.push(p);
        }
        assert!(seen.contains(&"var/log/".to_string()));
        assert!(!seen.iter().any(|p| p.ends_with("x.log")), "{seen:?}");
    }
}
