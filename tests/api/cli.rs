//! The command line, as a new user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zendesk-messaging-mcp"))
}

#[test]
fn simulator_prints_its_url_and_credentials() {
    let mut child = bin()
        .args(["simulator", "--seed", "demo", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(12) {
        seen.push(line.expect("line"));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(text.contains("listening on http://127.0.0.1:"), "{text}");
    for needle in [
        "SUNCO_API_URL=http://127.0.0.1:",
        "SUNCO_APP_ID=5f0c1e2d3b4a596877889900",
        "SUNCO_KEY_ID=app_",
        "SUNCO_KEY_SECRET=sim-app-secret",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn simulator_rejects_bad_flags() {
    let out = bin()
        .args(["simulator", "--fail-rate", "3", "--bind", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failRate must be from 0 to 1"), "{err}");
}

#[test]
fn config_errors_are_one_line_naming_the_variable() {
    let out = bin()
        .arg("config")
        .env_clear()
        .env("SUNCO_APP_ID", "5f748c1a2b5315fc007e7977")
        .env("SUNCO_KEY_ID", "app_1")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("SUNCO_KEY_SECRET"), "{err}");

    let out = bin()
        .arg("config")
        .env_clear()
        .env("SUNCO_APP_ID", "5f748c1a2b5315fc007e7977")
        .env("SUNCO_KEY_ID", "app_1")
        .env("SUNCO_KEY_SECRET", "do-not-print-me")
        .env("SUNCO_API_URL", "https://acme.zendesk.com/sc")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("https://acme.zendesk.com/sc"), "{text}");
    assert!(!text.contains("do-not-print-me"), "{text}");
}
