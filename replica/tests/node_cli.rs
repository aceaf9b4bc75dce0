//! The `replica` command line: testnet files, and clear refusals of bad configuration.

mod node_support;

use node_support::*;
use replica::config::{ClusterConfig, load_secret_key, replica_key_path};
use replica::crypto::public_key_hex;
use replica::ids::{ClientId, ReplicaId};

#[test]
fn testnet_writes_a_loadable_cluster_whose_keys_match_the_key_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = replica_command(&[
        "testnet",
        "--f",
        "2",
        "--dir",
        path_str(dir.path()),
        "--clients",
        "3",
        "--base-port",
        "7300",
    ]);
    assert!(out.status.success(), "{out:?}");
    let config = ClusterConfig::load(&dir.path().join("cluster.yaml")).expect("loads");
    assert_eq!(config.f, 2);
    assert_eq!(config.replicas.len(), 7);
    assert_eq!(config.clients.len(), 3);
    assert!(config.fsync, "fsync is on unless --no-fsync");
    for (i, replica) in config.replicas.iter().enumerate() {
        assert_eq!(
            replica.address.to_string(),
            format!("127.0.0.1:{}", 7300 + i)
        );
        let key = load_secret_key(&replica_key_path(dir.path(), ReplicaId(i as u32)))
            .expect("replica key file");
        assert_eq!(public_key_hex(&key.verifying_key()), replica.public_key);
    }
    for client in &config.clients {
        let key = load_secret_key(&replica::config::client_key_path(dir.path(), client.id))
            .expect("client key file");
        assert_eq!(public_key_hex(&key.verifying_key()), client.public_key);
    }
    assert_eq!(config.clients[2].id, ClientId(2));
}

#[test]
fn testnet_keys_reproduce_from_a_seed_and_differ_without_one() {
    let write = |seed: Option<&str>| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec![
            "testnet",
            "--f",
            "1",
            "--dir",
            path_str(dir.path()),
            "--no-fsync",
        ];
        if let Some(seed) = seed {
            args.extend(["--seed", seed]);
        }
        let out = replica_command(&args);
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(dir.path().join("cluster.yaml")).expect("read");
        (dir, text)
    };
    let (_a, seeded_a) = write(Some("42"));
    let (_b, seeded_b) = write(Some("42"));
    let (_c, other_seed) = write(Some("43"));
    let (_d, unseeded) = write(None);
    assert_eq!(seeded_a, seeded_b);
    assert_ne!(seeded_a, other_seed);
    assert_ne!(seeded_a, unseeded);
    assert!(seeded_a.contains("fsync: false"));
}

fn run_expecting_config_error(testnet: &Testnet, id: &str, extra: &[&str]) -> String {
    let config = testnet.config_path();
    let mut args = vec!["run", "--config", path_str(&config), "--id", id];
    args.extend(extra);
    let out = replica_command(&args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_malformed_cluster_file_is_refused_with_exit_code_2_naming_the_file_and_field() {
    let testnet = Testnet::new(1);
    let path = testnet.config_path();
    let good = std::fs::read_to_string(&path).expect("read");
    let bad_key = testnet.config.replicas[1].public_key.clone();

    std::fs::write(&path, good.replace(&bad_key, "not-hex")).expect("write");
    let stderr = run_expecting_config_error(&testnet, "0", &[]);
    assert!(stderr.contains(path_str(&path)), "{stderr}");
    assert!(stderr.contains("replicas[1].public_key"), "{stderr}");

    std::fs::write(&path, good.replace("f: 1", "f: one")).expect("write");
    let stderr = run_expecting_config_error(&testnet, "0", &[]);
    assert!(stderr.contains(path_str(&path)), "{stderr}");
    assert!(stderr.contains('f'), "{stderr}");

    std::fs::write(
        &path,
        good.replacen("checkpoint_interval:", "checkpoint_intreval:", 1),
    )
    .expect("write");
    let stderr = run_expecting_config_error(&testnet, "0", &[]);
    assert!(stderr.contains("checkpoint_intreval"), "{stderr}");

    std::fs::write(&path, &good).expect("write");
    let stderr = run_expecting_config_error(&testnet, "9", &[]);
    assert!(stderr.contains("--id 9"), "{stderr}");
}

#[test]
fn a_replica_address_other_than_127_0_0_1_is_refused_naming_the_field() {
    let testnet = Testnet::new(1);
    let path = testnet.config_path();
    let good = std::fs::read_to_string(&path).expect("read");
    let port = testnet.address(2).port();
    for other in ["127.0.0.2", "[::1]", "0.0.0.0"] {
        let text = good.replace(&format!("127.0.0.1:{port}"), &format!("{other}:{port}"));
        assert_ne!(text, good, "the address of replica 2 is in the file");
        let error = ClusterConfig::parse(&text, &path).expect_err(other);
        let message = error.to_string();
        assert!(
            message.contains("replicas[2].address"),
            "{other}: {message}"
        );
    }
}

#[test]
fn a_malformed_or_mismatched_key_file_is_refused_with_exit_code_2_naming_the_file() {
    let testnet = Testnet::new(2);
    let key_path = testnet.dir.path().join("replica-0.key");

    std::fs::write(&key_path, "zz-not-a-key\n").expect("write");
    let stderr = run_expecting_config_error(&testnet, "0", &[]);
    assert!(stderr.contains(path_str(&key_path)), "{stderr}");
    assert!(stderr.contains("secret key"), "{stderr}");

    let missing = testnet.dir.path().join("missing.key");
    let stderr = run_expecting_config_error(&testnet, "0", &["--key", path_str(&missing)]);
    assert!(stderr.contains(path_str(&missing)), "{stderr}");

    // A well-formed key that is not replica 0's: the cluster file's field is named.
    let other = testnet.dir.path().join("replica-1.key");
    let stderr = run_expecting_config_error(&testnet, "0", &["--key", path_str(&other)]);
    assert!(stderr.contains("replicas[0].public_key"), "{stderr}");
}
