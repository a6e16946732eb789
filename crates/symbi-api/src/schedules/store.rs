//! Schedules on disk: one JSON file per job under `<data dir>/schedules/`, written
//! atomically (temporary file, fsync, rename, fsync of the directory), so a crash leaves
//! either the old or the new version of a job, never a torn one.

use super::JobRecord;
use parking_lot::Mutex;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The directory of job files.
pub struct Store {
    dir: PathBuf,
    /// Serialises writers, so the last write of a job is its latest state.
    pub(super) write: Mutex<()>,
    /// The last write probe (when, result): health is public and frequent, and a probe is
    /// a file create + unlink, so it runs at most once per [`PROBE_TTL`].
    probe: Mutex<Option<(std::time::Instant, bool)>>,
}

/// How long a write probe of the store stays valid.
const PROBE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A job file that could not be read (it is left in place and reported).
#[derive(Debug)]
pub struct BadFile {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub message: String,
}

impl Store {
    /// Opens (and creates) the directory.
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            write: Mutex::new(()),
            probe: Mutex::new(None),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every job on disk, and the files that could not be read.
    pub fn load_all(&self) -> std::io::Result<(Vec<JobRecord>, Vec<BadFile>)> {
        let mut jobs = Vec::new();
        let mut bad = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<JobRecord>(&b)
                        .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))
                }) {
                Ok(j) => jobs.push(j),
                Err(message) => bad.push(BadFile { path, message }),
            }
        }
        jobs.sort_by_key(|j| j.created_at);
        Ok((jobs, bad))
    }

    /// Writes a job atomically. Callers hold [`Store::write`].
    pub(super) fn save_locked(&self, job: &JobRecord) -> std::io::Result<()> {
        let path = self.path(job.job_id);
        let tmp = self.dir.join(format!(".{}.tmp", job.job_id));
        let bytes = serde_json::to_vec_pretty(job).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    /// Removes a job's file. Callers hold [`Store::write`].
    pub(super) fn remove_locked(&self, id: Uuid) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => std::fs::File::open(&self.dir)?.sync_all(),
        }
    }

    /// Whether the directory can be written (`store_accessible` of the health endpoint).
    pub fn accessible(&self) -> bool {
        let mut last = self.probe.lock();
        if let Some((at, ok)) = *last {
            if at.elapsed() < PROBE_TTL {
                return ok;
            }
        }
        let probe = self.dir.join(".probe");
        let ok = std::fs::write(&probe, b"ok").is_ok();
        let _ = std::fs::remove_file(&probe);
        *last = Some((std::time::Instant::now(), ok));
        ok
    }
}
