//! The `kv` binary end to end against 4 real replica processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use replica::ids::ReplicaId;
use std::process::{Command, Output};
use workloads::testnet::LocalCluster;

fn kv(cluster: &LocalCluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("--config")
        .arg(cluster.config_path())
        .args(["--client", "2"])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kv failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn the_kv_binary_prints_each_operations_result() {
    let cluster = start_cluster();
    assert_eq!(stdout(&kv(&cluster, &["get", "color"])), "null");
    assert_eq!(stdout(&kv(&cluster, &["cas", "color", "-", "red"])), "true");
    assert_eq!(
        stdout(&kv(&cluster, &["cas", "color", "null", "blue"])),
        "false"
    );
    assert_eq!(stdout(&kv(&cluster, &["append", "color", "dish"])), "ok");
    assert_eq!(stdout(&kv(&cluster, &["get", "color"])), "reddish");
    assert_eq!(stdout(&kv(&cluster, &["put", "color", "green"])), "ok");
    assert_eq!(
        stdout(&kv(&cluster, &["cas", "color", "green", "teal"])),
        "true"
    );
    assert_eq!(stdout(&kv(&cluster, &["get", "color"])), "teal");
}

#[test]
fn the_kv_binary_exits_1_with_a_clear_message_when_no_quorum_answers() {
    let mut cluster = start_cluster();
    for id in [ReplicaId(0), ReplicaId(1), ReplicaId(2)] {
        cluster.kill(id).unwrap();
    }
    let output = kv(&cluster, &["--timeout-ms", "600", "put", "k", "v"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outcome unknown"), "{stderr}");
}

#[test]
fn the_kv_binary_exits_2_naming_a_bad_cluster_file_or_key() {
    let cluster = start_cluster();
    let bad_config = cluster.dir().join("broken.yaml");
    std::fs::write(&bad_config, "f: 1\nreplicas: 7\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("--config")
        .arg(&bad_config)
        .args(["--client", "0", "get", "k"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("replicas"),
        "{stderr}"
    );

    let bad_key = cluster.dir().join("bad.key");
    std::fs::write(&bad_key, "not hex").unwrap();
    let output = kv(&cluster, &["--key", bad_key.to_str().unwrap(), "get", "k"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.key"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args([
            "--config",
            "/nonexistent/cluster.yaml",
            "--client",
            "0",
            "frobnicate",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
