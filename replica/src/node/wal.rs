//! The write-ahead log and the stable-checkpoint snapshot in a replica's data dir.
//!
//! Each record is `[len: u32 BE][crc32: u32 BE][postcard payload]`. A `kill -9` can leave the
//! last record half written; its CRC (or its missing bytes) gives it away and recovery cuts the
//! file there instead of refusing to start. A record whose CRC matches but which does not
//! decode is not a torn write but a different format: that is an error, never silently dropped.
//!
//! Files are replaced (snapshot, truncated log) by writing a temporary file, syncing it,
//! renaming it over the old one and syncing the directory, so a crash leaves either the old
//! or the new version, never a mixture.

use crate::core::{Snapshot, WalRecord};
use crate::host::DiskUsage;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const LOG_FILE: &str = "wal.log";
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const RECORD_HEADER: usize = 8;
/// No honest record comes near this; a larger length can only be a torn or corrupt header.
const MAX_RECORD: usize = 1 << 30;
const WRITE_BUFFER: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: record at byte {offset} has a valid checksum but does not decode: {message}")]
    Undecodable {
        path: PathBuf,
        offset: usize,
        message: String,
    },
    #[error("{path}: snapshot is damaged ({message}); refusing to start without it")]
    DamagedSnapshot { path: PathBuf, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a data dir held when the replica started.
#[derive(Debug, Default)]
pub struct Recovered {
    pub snapshot: Option<Snapshot>,
    pub records: Vec<WalRecord>,
    /// Bytes cut off the end of the log because the last record was torn.
    pub torn_bytes: usize,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.records.is_empty()
    }
}

pub struct Wal {
    dir: PathBuf,
    log_path: PathBuf,
    writer: BufWriter<File>,
    fsync: bool,
    /// Records appended since the last `sync`.
    dirty: bool,
    scratch: Vec<u8>,
    /// Bytes `wal.log` holds (written or buffered), its high point since the last
    /// `take_usage`, and the bytes of `snapshot.bin`: what the resources samples report.
    log_bytes: u64,
    peak_log_bytes: u64,
    snapshot_bytes: u64,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, recovering what it holds.
    pub fn open(dir: &Path, fsync: bool) -> Result<(Wal, Recovered), WalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let log_path = dir.join(LOG_FILE);
        let snapshot = read_snapshot(&dir.join(SNAPSHOT_FILE))?;
        let (records, valid_len, file_len) = match std::fs::read(&log_path) {
            Ok(bytes) => {
                let (records, valid_len) = decode_records::<WalRecord>(&bytes, &log_path)?;
                (records, valid_len, bytes.len())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0, 0),
            Err(e) => return Err(io_error(&log_path)(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        if valid_len < file_len {
            tracing::warn!(
                log = %log_path.display(),
                cut = file_len - valid_len,
                "write-ahead log ends in a torn record; cutting it off"
            );
            file.set_len(valid_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(io_error(&log_path))?;
        }
        // A snapshot that read back whole is exactly its file.
        let snapshot_bytes = std::fs::metadata(dir.join(SNAPSHOT_FILE)).map_or(0, |m| m.len());
        let wal = Wal {
            dir: dir.to_path_buf(),
            log_path,
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            fsync,
            dirty: false,
            scratch: Vec::new(),
            log_bytes: valid_len as u64,
            peak_log_bytes: valid_len as u64,
            snapshot_bytes,
        };
        let recovered = Recovered {
            snapshot,
            records,
            torn_bytes: file_len - valid_len,
        };
        Ok((wal, recovered))
    }

    /// Buffers one record; it is durable only after the next `sync`.
    pub fn append(&mut self, record: &WalRecord) -> Result<(), WalError> {
        self.scratch.clear();
        encode_record(record, &mut self.scratch);
        self.writer
            .write_all(&self.scratch)
            .map_err(io_error(&self.log_path))?;
        self.dirty = true;
        self.log_bytes += self.scratch.len() as u64;
        self.peak_log_bytes = self.peak_log_bytes.max(self.log_bytes);
        Ok(())
    }

    /// What the log and snapshot held since the previous call; the peak starts over from
    /// what the log holds now.
    pub fn take_usage(&mut self) -> DiskUsage {
        let usage = DiskUsage {
            peak_log_bytes: self.peak_log_bytes,
            snapshot_bytes: self.snapshot_bytes,
        };
        self.peak_log_bytes = self.log_bytes;
        usage
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Makes every appended record durable (written and, unless fsync is off, synced).
    pub fn sync(&mut self) -> Result<(), WalError> {
        if !self.dirty {
            return Ok(());
        }
        self.writer.flush().map_err(io_error(&self.log_path))?;
        if self.fsync {
            self.writer
                .get_ref()
                .sync_data()
                .map_err(io_error(&self.log_path))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Stores the snapshot of a stable checkpoint, then replaces the log with `retained`.
    /// Records appended before this call and not in `retained` are dropped: the snapshot
    /// covers them.
    pub fn install_checkpoint(
        &mut self,
        snapshot: &Snapshot,
        retained: &[WalRecord],
    ) -> Result<(), WalError> {
        let mut bytes = Vec::new();
        encode_record(snapshot, &mut bytes);
        replace_file(&self.dir, SNAPSHOT_FILE, &bytes)?;
        self.snapshot_bytes = bytes.len() as u64;

        bytes.clear();
        for record in retained {
            encode_record(record, &mut bytes);
        }
        replace_file(&self.dir, LOG_FILE, &bytes)?;
        self.log_bytes = bytes.len() as u64;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .map_err(io_error(&self.log_path))?;
        // The old writer's buffer belongs to the replaced file: drop it unwritten.
        let old = std::mem::replace(
            &mut self.writer,
            BufWriter::with_capacity(WRITE_BUFFER, file),
        );
        let _ = old.into_parts();
        self.dirty = false;
        Ok(())
    }
}

/// The bytes `value` takes as one record of the log or snapshot file, header included: what
/// the simulator's disk reports, so its resources samples count what a real log would hold.
pub fn record_len<T: Serialize>(value: &T) -> u64 {
    let payload = postcard::experimental::serialized_size(value).unwrap_or(0);
    (RECORD_HEADER + payload) as u64
}

fn encode_record<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let payload = postcard::to_stdvec(value).expect("postcard encoding into a Vec cannot fail");
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes records from the start of `bytes`; returns them and the length of the valid prefix.
fn decode_records<T: DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
) -> Result<(Vec<T>, usize), WalError> {
    let mut records = Vec::new();
    let mut offset = 0;
    while let Some(payload) = next_payload(&bytes[offset..]) {
        let record = postcard::from_bytes(payload).map_err(|e| WalError::Undecodable {
            path: path.to_path_buf(),
            offset,
            message: e.to_string(),
        })?;
        records.push(record);
        offset += RECORD_HEADER + payload.len();
    }
    Ok((records, offset))
}

/// The payload of the first record if it is complete and its checksum matches.
fn next_payload(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..RECORD_HEADER)?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(RECORD_HEADER..RECORD_HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

fn read_snapshot(path: &Path) -> Result<Option<Snapshot>, WalError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let damaged = |message: &str| WalError::DamagedSnapshot {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let (mut snapshots, valid_len) = decode_records::<Snapshot>(&bytes, path)?;
    if valid_len != bytes.len() || snapshots.len() != 1 {
        return Err(damaged("checksum mismatch or trailing bytes"));
    }
    Ok(snapshots.pop())
}

fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), WalError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&temp).map_err(io_error(&temp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temp))?;
    std::fs::rename(&temp, &path).map_err(io_error(&path))?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_from_seed;
    use crate::ids::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
    use crate::kv::Operation;
    use crate::message::{Prepare, Request, Signed, WireMessage};
    use crate::service::ServiceState;

    fn prepare_record(seq: u64) -> WalRecord {
        let key = key_from_seed(1, Principal::Replica(ReplicaId(1)));
        let body = Prepare {
            view: View(0),
            seq: Seq(seq),
            digest: crate::digest::Digest::of(&seq.to_be_bytes()),
        };
        WalRecord::Message(WireMessage::Prepare(Signed::sign(
            body,
            Principal::Replica(ReplicaId(1)),
            &key,
        )))
    }

    fn request_record(timestamp: u64) -> WalRecord {
        let client = ClientId(3);
        let key = key_from_seed(1, Principal::Client(client));
        let body = Request {
            client,
            timestamp: Timestamp(timestamp),
            op: Operation::Put {
                key: "k".into(),
                value: "v".repeat(100),
            },
        };
        WalRecord::Message(WireMessage::Request(Signed::sign(
            body,
            Principal::Client(client),
            &key,
        )))
    }

    fn write_records(dir: &Path, records: &[WalRecord]) {
        let (mut wal, recovered) = Wal::open(dir, true).expect("open");
        assert!(recovered.is_empty());
        for record in records {
            wal.append(record).expect("append");
        }
        wal.sync().expect("sync");
    }

    #[test]
    fn records_written_and_synced_are_recovered_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records: Vec<_> = (1..=20)
            .map(|i| {
                if i % 2 == 0 {
                    prepare_record(i)
                } else {
                    request_record(i)
                }
            })
            .collect();
        write_records(dir.path(), &records);
        let (_, recovered) = Wal::open(dir.path(), true).expect("reopen");
        assert_eq!(recovered.records, records);
        assert_eq!(recovered.torn_bytes, 0);
        assert!(recovered.snapshot.is_none());
    }

    #[test]
    fn a_torn_tail_at_every_cut_point_is_cut_off_and_the_log_stays_appendable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = vec![prepare_record(1), request_record(2), prepare_record(3)];
        write_records(dir.path(), &records);
        let full = std::fs::read(dir.path().join(LOG_FILE)).expect("read");
        let mut first_two = Vec::new();
        encode_record(&records[0], &mut first_two);
        encode_record(&records[1], &mut first_two);
        for cut in first_two.len() + 1..full.len() {
            std::fs::write(dir.path().join(LOG_FILE), &full[..cut]).expect("write torn");
            let (mut wal, recovered) = Wal::open(dir.path(), true).expect("open torn log");
            assert_eq!(recovered.records, records[..2], "cut at byte {cut}");
            assert_eq!(recovered.torn_bytes, cut - first_two.len());
            wal.append(&records[2]).expect("append after cut");
            wal.sync().expect("sync");
            drop(wal);
            let (_, again) = Wal::open(dir.path(), true).expect("reopen");
            assert_eq!(again.records, records, "append after cut at byte {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_is_detected_by_its_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = vec![prepare_record(1), prepare_record(2)];
        write_records(dir.path(), &records);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");
        let (_, recovered) = Wal::open(dir.path(), true).expect("open");
        assert_eq!(recovered.records, records[..1]);
        assert!(recovered.torn_bytes > 0);
    }

    #[test]
    fn a_record_with_a_valid_checksum_that_does_not_decode_is_an_error_not_a_silent_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let payload = [0xffu8; 16];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(dir.path().join(LOG_FILE), &bytes).expect("write");
        assert!(matches!(
            Wal::open(dir.path(), true),
            Err(WalError::Undecodable { offset: 0, .. })
        ));
    }

    #[test]
    fn installing_a_checkpoint_stores_the_snapshot_and_replaces_the_log_with_the_retained_records()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), false).expect("open");
        for i in 1..=5 {
            wal.append(&prepare_record(i)).expect("append");
        }
        wal.sync().expect("sync");
        wal.append(&prepare_record(6)).expect("append unsynced");
        let mut state = ServiceState::default();
        state.execute(
            ClientId(1),
            Timestamp(1),
            &Operation::Put {
                key: "a".into(),
                value: "b".into(),
            },
        );
        let snapshot = Snapshot {
            seq: Seq(4),
            view: View(0),
            state,
            checkpoint_proof: Vec::new(),
        };
        let retained = vec![prepare_record(5), prepare_record(6)];
        wal.install_checkpoint(&snapshot, &retained)
            .expect("install");
        wal.append(&prepare_record(7)).expect("append after");
        wal.sync().expect("sync");
        drop(wal);
        let (_, recovered) = Wal::open(dir.path(), false).expect("reopen");
        assert_eq!(recovered.snapshot, Some(snapshot));
        let expected: Vec<_> = (5..=7).map(prepare_record).collect();
        assert_eq!(recovered.records, expected);
    }

    #[test]
    fn a_damaged_snapshot_refuses_to_start_rather_than_forgetting_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = Snapshot {
            seq: Seq(4),
            view: View(0),
            state: ServiceState::default(),
            checkpoint_proof: Vec::new(),
        };
        let mut bytes = Vec::new();
        encode_record(&snapshot, &mut bytes);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(dir.path().join(SNAPSHOT_FILE), &bytes).expect("write");
        assert!(matches!(
            Wal::open(dir.path(), true),
            Err(WalError::DamagedSnapshot { .. })
        ));
    }

    #[test]
    fn the_usage_counts_the_files_bytes_and_keeps_the_peak_from_before_a_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file_len = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .map(|m| m.len())
                .expect("file")
        };
        let (mut wal, _) = Wal::open(dir.path(), false).expect("open");
        for seq in 1..=6 {
            wal.append(&prepare_record(seq)).expect("append");
        }
        wal.sync().expect("sync");
        let before_truncation = file_len(LOG_FILE);
        let appended: u64 = (1..=6).map(|s| record_len(&prepare_record(s))).sum();
        assert_eq!(appended, before_truncation);

        let snapshot = Snapshot {
            seq: Seq(4),
            view: View(0),
            state: ServiceState::default(),
            checkpoint_proof: Vec::new(),
        };
        let retained = vec![prepare_record(5), prepare_record(6)];
        wal.install_checkpoint(&snapshot, &retained)
            .expect("install");
        let usage = wal.take_usage();
        assert_eq!(usage.peak_log_bytes, before_truncation);
        assert_eq!(usage.snapshot_bytes, file_len(SNAPSHOT_FILE));
        // The next interval starts from what the truncated log holds.
        assert_eq!(wal.take_usage().peak_log_bytes, file_len(LOG_FILE));
        drop(wal);
        let (mut reopened, _) = Wal::open(dir.path(), false).expect("reopen");
        let usage = reopened.take_usage();
        assert_eq!(usage.peak_log_bytes, file_len(LOG_FILE));
        assert_eq!(usage.snapshot_bytes, file_len(SNAPSHOT_FILE));
    }
}
