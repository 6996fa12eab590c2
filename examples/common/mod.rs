//! What the examples share: the release binary and the processes they start from it, what
//! those print, and what /proc and /metrics say of them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The release binary beside this example.
pub fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let bin = dir.join("zendesk-messaging-mcp");
    assert!(bin.exists(), "build it first: cargo build --release");
    bin
}

/// Starts a process and reads its stdout until a line containing `marker`; returns that text.
pub fn spawn(args: &[&str], env: &[(&str, String)], marker: &str) -> (Child, String) {
    let mut cmd = Command::new(binary());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            break;
        }
    }
    // Keep draining so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, seen)
}

pub fn field(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

/// A process's resident set now and at its peak (kB), from /proc (0 when unreadable).
pub fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let read = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (read("VmRSS:"), read("VmHWM:"))
}

/// Sums the samples of the lines of `/metrics` text that start with `name` and contain every
/// one of `with`.
pub fn metric_sum(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
