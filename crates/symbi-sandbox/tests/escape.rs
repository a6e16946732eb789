//! Escape attempts against both tiers, each contained and reported. Real Docker, real runc
//! and runsc; the "attacker" is shell code given to an `execute_code` tool.

mod common;

use common::*;
use symbi_sandbox::{ExitStatus, LimitKind, SandboxError, ToolOutput};
use symbi_types::SandboxTier;

fn text(o: &symbi_sandbox::ToolOutcome) -> String {
    match &o.output {
        ToolOutput::Text(t) => t.clone(),
        ToolOutput::Json(v) => v.to_string(),
    }
}

/// Generates one test per tier from an async body taking the tier.
macro_rules! both_tiers {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tier1() {
                ($body)(SandboxTier::Tier1).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tier2() {
                ($body)(SandboxTier::Tier2).await
            }
        }
    };
}

both_tiers!(identity_and_privileges, |tier| async move {
    let s = sandbox().await;
    let t = shell_tool("20s", "64MB", 16, "64KB");
    let o = run_in(
        &s,
        tier,
        &t,
        "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; uname -r",
    )
    .await
    .expect("runs");
    let out = text(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("65534"), "{out}");
    assert_eq!(lines.next(), Some("65534"), "{out}");
    assert!(
        out.contains("CapEff:\t0000000000000000"),
        "capabilities left: {out}"
    );
    assert!(
        out.contains("CapBnd:\t0000000000000000"),
        "bounding set not empty: {out}"
    );
    if tier == SandboxTier::Tier1 {
        // gVisor's /proc does not report these two; its own syscall filter applies instead.
        assert!(out.contains("NoNewPrivs:\t1"), "{out}");
        assert!(out.contains("Seccomp:\t2"), "no seccomp filter: {out}");
    }
    // Tier2 runs under gVisor's kernel, not the host's.
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let guest_release = out.lines().last().unwrap();
    assert_eq!(
        guest_release == host_release.trim(),
        tier == SandboxTier::Tier1,
        "uname -r {guest_release}"
    );
    assert_eq!(leftover_containers(&s).await, 0);
});

both_tiers!(network_is_denied, |tier| async move {
    let s = sandbox().await;
    // A service on the host's loopback that the sandbox must not reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let tools = repo_tools();
    let mut probe = (**tools.get("net_probe").unwrap()).clone();
    if tier == SandboxTier::Tier2 {
        probe.min_tier = Some(SandboxTier::Tier2);
    }
    let e = s
        .run_tool(
            &probe,
            &serde_json::json!({"host": "127.0.0.1", "port": port}),
            &request(tier),
        )
        .await
        .expect_err("the host's loopback must be unreachable");
    assert!(matches!(e, SandboxError::ToolFailed { .. }), "{e}");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's 127.0.0.1:{port}"
    );
    // An external address (TEST-NET-1, RFC 5737): the container has no route at all, so
    // no packet can leave it.
    let e = s
        .run_tool(
            &probe,
            &serde_json::json!({"host": "192.0.2.1", "port": 80}),
            &request(tier),
        )
        .await
        .expect_err("an external address must be unreachable");
    assert!(matches!(e, SandboxError::ToolFailed { .. }), "{e}");
    // Structurally: only a loopback interface, no route.
    let t = shell_tool("20s", "64MB", 16, "64KB");
    let o = run_in(
        &s,
        tier,
        &t,
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1; echo routes:; tail -n +2 /proc/net/route",
    )
    .await
    .unwrap();
    let out = text(&o);
    let ifaces: Vec<&str> = out
        .split("routes:")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(ifaces.iter().all(|i| *i == "lo"), "interfaces: {out}");
    assert_eq!(
        out.split("routes:").nth(1).unwrap().trim(),
        "",
        "routes: {out}"
    );
});

both_tiers!(root_fs_is_read_only_and_tmp_noexec, |tier| async move {
    let s = sandbox().await;
    let t = shell_tool("20s", "64MB", 16, "64KB");
    let script = "for f in /etc/evil /bin/evil /evil; do echo x > $f 2>/dev/null && echo WROTE $f; done; \
                  echo ok > /tmp/t && cat /tmp/t; cp /bin/busybox /tmp/bb && /tmp/bb true && echo EXECUTED; true";
    let o = run_in(&s, tier, &t, script).await.unwrap();
    let out = text(&o);
    assert!(!out.contains("WROTE"), "wrote to the root fs: {out}");
    assert!(out.contains("ok"), "/tmp is not writable: {out}");
    assert!(!out.contains("EXECUTED"), "/tmp allows exec: {out}");
});

both_tiers!(host_files_are_invisible, |tier| async move {
    let s = sandbox().await;
    let marker = format!("symbi-secret-{}", uuid::Uuid::new_v4().simple());
    let host_file = std::env::temp_dir().join(&marker);
    std::fs::write(&host_file, "host secret").unwrap();
    let t = shell_tool("30s", "64MB", 16, "64KB");
    let script = format!(
        "cat {} 2>&1; cat /etc/shadow 2>&1; find / -xdev -name '{marker}*' 2>/dev/null; ls /root /home 2>&1; echo END",
        host_file.display()
    );
    let o = run_in(&s, tier, &t, &script).await.unwrap();
    let out = text(&o);
    std::fs::remove_file(&host_file).unwrap();
    assert!(!out.contains("host secret"), "read a host file: {out}");
    assert!(
        !out.lines()
            .any(|l| l.contains(&marker) && !l.contains("No such file")),
        "found the host file: {out}"
    );
    assert!(out.contains("END"));
});

both_tiers!(fork_bomb_is_contained, |tier| async move {
    let s = sandbox().await;
    let t = shell_tool("8s", "64MB", 16, "64KB");
    let e = run_in(&s, tier, &t, "bomb() { bomb | bomb & }; bomb; sleep 30").await;
    eprintln!("{tier}: fork bomb outcome: {e:?}");
    match (tier, e) {
        // Tier1: the kernel's pids cgroup refuses the forks, and the failure says so.
        (
            SandboxTier::Tier1,
            Err(SandboxError::LimitExceeded {
                limit: LimitKind::Pids,
                ..
            }),
        ) => {}
        // (A shell that gives up between two samples of the cgroup reports its own error.)
        (SandboxTier::Tier1, Err(SandboxError::ToolFailed { message, .. }))
            if message.contains("can't fork") => {}
        // Tier2: gVisor returns EAGAIN itself (RLIMIT_NPROC); the host cgroup never fills,
        // so the bomb spins until the time limit (or the shell gives up).
        (
            SandboxTier::Tier2,
            Err(SandboxError::Timeout { .. }) | Err(SandboxError::ToolFailed { .. }),
        ) => {}
        (_, Ok(o)) => panic!("fork bomb reported success: {o:?}"),
        (_, Err(e)) => panic!("unexpected error in {tier}: {e}"),
    }
    // The runtime is fine: the next call works.
    let o = run_in(&s, tier, &t, "echo alive").await.unwrap();
    assert_eq!(text(&o).trim(), "alive");
    assert_eq!(leftover_containers(&s).await, 0);
});

both_tiers!(memory_bomb_is_an_oom_error, |tier| async move {
    let s = sandbox().await;
    let t = shell_tool("30s", "48MB", 16, "64KB");
    let e = run_in(
        &s,
        tier,
        &t,
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    )
    .await
    .expect_err("must fail");
    assert!(
        matches!(
            e,
            SandboxError::LimitExceeded {
                limit: LimitKind::Memory,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.dsl_kind(), "ActionFailed");
    assert_eq!(e.reported_kind(), Some("MemoryLimitExceeded"));
    let o = run_in(&s, tier, &t, "echo alive").await.unwrap();
    assert_eq!(text(&o).trim(), "alive");
});

both_tiers!(cpu_spin_is_killed_at_the_timeout, |tier| async move {
    let s = sandbox().await;
    let t = shell_tool("2s", "64MB", 16, "64KB");
    let start = std::time::Instant::now();
    let e = run_in(&s, tier, &t, "while :; do :; done")
        .await
        .expect_err("must time out");
    assert!(matches!(e, SandboxError::Timeout { .. }), "{e}");
    assert_eq!(e.dsl_kind(), "ActionTimeout");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        leftover_containers(&s).await,
        0,
        "the spinning container was not removed"
    );
});

both_tiers!(huge_output_is_capped, |tier| async move {
    let s = sandbox().await;
    let t = shell_tool("20s", "64MB", 16, "64KB");
    let o = run_in(&s, tier, &t, "yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .expect("text output is returned, truncated");
    assert!(o.stdout_truncated);
    assert_eq!(o.exit_status, ExitStatus::KilledAtOutputCap);
    assert_eq!(text(&o).len(), 64 * 1024);
    assert_eq!(leftover_containers(&s).await, 0);
});

both_tiers!(shell_metacharacters_are_inert, |tier| async move {
    let s = sandbox().await;
    let echo = manifest(
        r#"name = "echo_arg"
description = "prints its argument"
image = "busybox"
command = ["printf", "%s", "{{value}}"]
output = "text"
[input]
type = "object"
required = ["value"]
properties.value = { type = "string" }
[risk]
code_trust = "trusted"
"#,
    );
    let hostile = [
        "; rm -rf / ; echo pwned",
        "$(id -u)",
        "`id -u`",
        "a\nb\n; id",
        "x && id || id | id > /tmp/o",
        "'\"\\",
        "*",
        "${PATH}",
    ];
    for h in hostile {
        let o = s
            .run_tool(&echo, &serde_json::json!({"value": h}), &request(tier))
            .await
            .unwrap();
        assert_eq!(text(&o), h, "the value was interpreted");
    }
    // Option injection is refused before anything runs.
    let e = s
        .run_tool(
            &echo,
            &serde_json::json!({"value": "--help"}),
            &request(tier),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SandboxError::InvalidInput { .. }), "{e}");
});
