//! Long runs: checkpoints garbage-collect the message log and the write-ahead log.

mod core_support;

use core_support::*;
use replica::sim::SimConfig;

#[test]
fn ten_thousand_requests_keep_the_message_log_within_the_watermark_window() {
    let window = 32;
    // Large batches (one in flight at a time) keep the run short: the cost is signatures, and
    // 10,000 requests still span over 600 sequence numbers, many windows.
    let mut net = network(SimConfig {
        seed: 3,
        clients: 32,
        checkpoint_interval: 16,
        watermark_window: window,
        max_batch: 32,
        pipeline_depth: 1,
        ..SimConfig::default()
    });
    let mut driver = Driver::new(3);
    let mut longest_log = 0usize;
    let mut longest_wal = 0usize;
    let finished = driver.run_ops_observed(&mut net, 10_000 / 32 + 1, 600_000, |net| {
        for replica in net.replica_ids() {
            if let Some(core) = net.core(replica) {
                longest_log = longest_log.max(core.log_len());
            }
            if let Some(disk) = net.disk(replica) {
                longest_wal = longest_wal.max(disk.records.len());
            }
        }
    });
    assert!(finished, "not all 10,000 requests completed");
    assert!(net.completed().len() >= 10_000);
    let last_executed = net
        .core(replica::ReplicaId(0))
        .expect("running")
        .last_executed();
    assert!(
        last_executed.0 > 10 * window,
        "the run must span many windows to show anything (last executed {last_executed})"
    );
    assert!(longest_log > 0, "the log was never used");
    assert!(
        longest_log as u64 <= window,
        "log held {longest_log} sequence numbers, window is {window}"
    );
    // At most a pre-prepare and n prepares and n commits per sequence number in the window,
    // plus a few checkpoint records; growth with the run's length would be ten times that.
    let n = net.config().replicas.len() as u64;
    assert!(
        longest_wal as u64 <= window * (2 * n + 2),
        "write-ahead log reached {longest_wal} records"
    );
    assert_no_agreement_violations(&net);
}
