//! A build identifier: a short hash over the bytes of the executables a run uses (`gauntlet`,
//! `replica`, `byzantine-replica`), so `gauntlet reproduce` can warn that it is not replaying
//! a run with the binaries that produced it.

use replica::digest::Digest;
use std::path::PathBuf;

/// The executables hashed, looked up next to the current one.
pub const EXECUTABLES: &[&str] = &["gauntlet", "replica", "byzantine-replica"];

/// The files that make up the build: the current executable, and the others of
/// [`EXECUTABLES`] found beside it (missing ones are left out, and so change the id).
pub fn build_files() -> Vec<PathBuf> {
    let Ok(current) = std::env::current_exe() else {
        return Vec::new();
    };
    let mut files = vec![current.clone()];
    if let Some(dir) = current.parent() {
        for name in EXECUTABLES {
            let candidate = dir.join(name);
            if candidate != current && candidate.is_file() {
                files.push(candidate);
            }
        }
    }
    files
}

/// Hash of the named files' names and bytes, as 12 hex digits; `unknown` if none is readable.
pub fn build_id_of(files: &[PathBuf]) -> String {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Name and length first, so the boundaries between files are part of what is hashed.
        parts.push(name.into_bytes());
        parts.push((bytes.len() as u64).to_be_bytes().to_vec());
        parts.push(Digest::of(&bytes).0.to_vec());
    }
    if parts.is_empty() {
        return "unknown".into();
    }
    let digest = Digest::of_parts(parts.iter().map(Vec::as_slice));
    digest.to_hex()[..12].to_string()
}

/// The build identifier of the running binaries; record it in `verdict.json`.
pub fn build_id() -> String {
    build_id_of(&build_files())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_changes_when_any_executable_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gauntlet = dir.path().join("gauntlet");
        let replica = dir.path().join("replica");
        std::fs::write(&gauntlet, b"gauntlet v1").expect("write");
        std::fs::write(&replica, b"replica v1").expect("write");
        let files = vec![gauntlet.clone(), replica.clone()];
        let before = build_id_of(&files);
        assert_eq!(before.len(), 12);
        assert_eq!(
            before,
            build_id_of(&files),
            "the same bytes give the same id"
        );
        std::fs::write(&replica, b"replica v2").expect("write");
        assert_ne!(before, build_id_of(&files));
    }

    #[test]
    fn moving_bytes_between_files_changes_the_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("gauntlet");
        let b = dir.path().join("replica");
        std::fs::write(&a, b"ab").expect("write");
        std::fs::write(&b, b"c").expect("write");
        let first = build_id_of(&[a.clone(), b.clone()]);
        std::fs::write(&a, b"a").expect("write");
        std::fs::write(&b, b"bc").expect("write");
        assert_ne!(first, build_id_of(&[a, b]));
    }

    #[test]
    fn no_readable_file_gives_unknown() {
        assert_eq!(
            build_id_of(&[PathBuf::from("/nonexistent/gauntlet")]),
            "unknown"
        );
    }

    #[test]
    fn running_binary_has_an_id() {
        assert_ne!(build_id(), "unknown");
    }
}
