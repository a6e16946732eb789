//! Test helper for the crash-safety suite (not part of the product).
//!
//! `symbi-audit-crash-child DATA_DIR WRITERS [CHECKPOINT_EVERY]` opens the audit log under
//! `DATA_DIR`, then `WRITERS` threads append events as fast as they can. After each
//! acknowledgement it prints `SEQ EVENT_ID` on stdout (one write per line), so every line the
//! parent reads is an event the log promised was durable. The parent kills it with SIGKILL.
//!
//! With `SYMBI_AUDIT_TEST_SIGNATURES=per_batch` the log signs per batch and each writer
//! appends batches of 8 events (so most records are covered by their batch's signature).
//!
//! With `SYMBI_AUDIT_TEST_FSIZE=BYTES` the child limits its file sizes (RLIMIT_FSIZE), so
//! writes fail once a file reaches BYTES: the log must refuse the event (fail closed) and
//! every later one; the child then exits with status 3.

use std::io::Write;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} DATA_DIR WRITERS [CHECKPOINT_EVERY]", args[0]);
        std::process::exit(2);
    }
    let data = std::path::PathBuf::from(&args[1]);
    let writers: usize = args[2].parse().expect("WRITERS is a number");
    let mut opts = symbi_audit::AuditOptions::new(&data);
    opts.segment_size = 64 * 1024; // rotate often, so crashes also hit rotations
    if let Some(n) = args.get(3) {
        opts.checkpoint_every = n.parse().expect("CHECKPOINT_EVERY is a number");
        opts.checkpoint_interval = std::time::Duration::from_secs(3600);
    } else {
        opts.checkpoint_every = 50;
    }
    let per_batch = std::env::var("SYMBI_AUDIT_TEST_SIGNATURES").is_ok_and(|v| v == "per_batch");
    if per_batch {
        opts.signatures = symbi_audit::Signatures::PerBatch;
    }
    if let Ok(limit) = std::env::var("SYMBI_AUDIT_TEST_FSIZE") {
        let limit: u64 = limit.parse().expect("SYMBI_AUDIT_TEST_FSIZE is a number");
        // SAFETY: plain libc calls with valid arguments; no memory is shared.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0);
        }
    }
    let p = symbi_crypto::provider("ring").expect("ring provider");
    let log = match symbi_audit::AuditLog::open(opts, p) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("open failed: {e}");
            std::process::exit(1);
        }
    };
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                let batch = if per_batch { 8 } else { 1 };
                for i in (0u64..).step_by(batch) {
                    let drafts: Vec<_> = (i..i + batch as u64)
                        .map(|i| symbi_types::EventDraft::new("custom", serde_json::json!({"writer": w, "i": i, "pad": "x".repeat((i % 200) as usize)})))
                        .collect();
                    for r in log.append_many_blocking(drafts) {
                        match r {
                            Ok(r) => {
                                let line = format!("{} {}\n", r.sequence, r.id);
                                let mut o = out.lock().unwrap();
                                o.write_all(line.as_bytes()).unwrap();
                                o.flush().unwrap();
                            }
                            Err(e) => {
                                eprintln!("append failed: {e}");
                                // Fail closed: every later append must fail too.
                                let again = log.append_blocking(symbi_types::EventDraft::new("custom", serde_json::json!({})));
                                std::process::exit(if again.is_err() { 3 } else { 4 });
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
