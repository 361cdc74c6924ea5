//! The worker binary killed (SIGKILL) or stopped (SIGTERM) mid-work: nothing is lost or
//! doubled, and the final matches equal an uninterrupted run — also when it is killed again
//! and again just after it starts consuming (a crash loop).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use facematch_core::{ImageHash, store::ImageState};
use facematch_testkit::{
    MatchTable, Process, System, assert_same_matches, broker::drain_logs, images::eight_images,
    within,
};

const WAIT: Duration = Duration::from_secs(120);

fn spawn_worker(sys: &System) -> Process {
    spawn_worker_batch(sys, 1)
}

fn spawn_worker_batch(sys: &System, max_batch: usize) -> Process {
    sys.spawn_worker(
        std::path::Path::new(env!("CARGO_BIN_EXE_gpu-worker")),
        max_batch,
        &[],
    )
}

async fn states(sys: &System, hashes: &[ImageHash]) -> Vec<ImageState> {
    let mut out = Vec::new();
    for h in hashes {
        let s = sys
            .store
            .image_status(*h)
            .await
            .expect("redis")
            .expect("known");
        out.push(s.state);
    }
    out
}

async fn wait_some_done(sys: &System, hashes: &[ImageHash]) {
    let deadline = Instant::now() + WAIT;
    while !states(sys, hashes).await.contains(&ImageState::Done) {
        assert!(Instant::now() < deadline, "no job finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn upload_all(sys: &System) -> Vec<ImageHash> {
    let mut hashes = Vec::new();
    for (name, bytes) in eight_images() {
        hashes.push(sys.scan(&name, bytes).await);
    }
    hashes
}

/// Every image done, each face logged once; returns the match table.
async fn check_complete(sys: &System, hashes: &[ImageHash]) -> MatchTable {
    sys.assert_done_and_logged_once(hashes, WAIT).await;
    sys.match_table(hashes).await
}

async fn reference_run() -> MatchTable {
    let sys = System::new("reference").await;
    let worker = sys.start_worker(sys.worker_args(4));
    let hashes = upload_all(&sys).await;
    let table = check_complete(&sys, &hashes).await;
    worker.stop().await;
    sys.cleanup().await;
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_unacked_deliveries_loses_and_doubles_nothing() {
    within(async {
        let sys = System::new("sigkill").await;
        let hashes = upload_all(&sys).await;
        let mut worker = spawn_worker(&sys);
        wait_some_done(&sys, &hashes).await;
        worker.0.kill().expect("SIGKILL");
        let _ = worker.0.wait();
        let at_kill = states(&sys, &hashes).await;
        assert!(
            at_kill.iter().any(|s| *s != ImageState::Done),
            "the worker was killed with work in hand: {at_kill:?}"
        );

        let _restarted = spawn_worker(&sys);
        let table = check_complete(&sys, &hashes).await;
        assert_same_matches(&reference_run().await, &table);
        sys.cleanup().await;
    })
    .await;
}

/// The crash loop: every accepted job is prefetched by each worker and returned by each
/// kill, so the broker's own delivery count passes any small limit; only attempts that were
/// really running count, and innocent jobs all end `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_leaves_every_accepted_job_done() {
    const KILLS: usize = 6;
    within(async {
        let sys = System::new("crash-loop").await;
        let hashes = upload_all(&sys).await;
        assert!(hashes.len() >= 8, "at least 8 accepted jobs");
        for _ in 0..KILLS {
            let mut worker = spawn_worker_batch(&sys, 4);
            sys.wait_scan_consumers(1, WAIT).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            worker.0.kill().expect("SIGKILL");
            let _ = worker.0.wait();
            sys.wait_scan_consumers(0, WAIT).await;
        }
        let at_end = states(&sys, &hashes).await;
        eprintln!("after {KILLS} kills: {at_end:?}");
        for h in &hashes {
            let attempts = sys.attempts(*h).await;
            assert!(attempts <= KILLS as u32 + 1, "{h}: {attempts} attempts");
        }

        let _survivor = spawn_worker_batch(&sys, 4);
        check_complete(&sys, &hashes).await;
        assert_eq!(sys.dead_letters().await, 0, "nothing dead-lettered");
        sys.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batch_in_hand_and_exits_0() {
    within(async {
        let sys = System::new("sigterm").await;
        let mut logs = sys.listen_logs("*.worker.*").await;
        let hashes = upload_all(&sys).await;
        let mut worker = spawn_worker(&sys);
        wait_some_done(&sys, &hashes).await;
        let pid = worker.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = worker.0.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "exit status {status:?}");
        // The worker's own log lines reached the `logs` exchange as `<hostname>.worker.<level>`.
        let info_key = facematch_core::amqp::log_routing_key("worker", &tracing::Level::INFO);
        let lines = drain_logs(&mut logs, Duration::from_secs(5)).await;
        assert!(
            lines
                .iter()
                .any(|(key, text)| *key == info_key && text.contains("job done")),
            "no {info_key} 'job done' line in {lines:?}"
        );
        // Nothing half-done: each image is done or still waiting in the queue.
        for s in states(&sys, &hashes).await {
            assert!(matches!(s, ImageState::Done | ImageState::Queued), "{s:?}");
        }
        let _restarted = spawn_worker(&sys);
        check_complete(&sys, &hashes).await;
        sys.cleanup().await;
    })
    .await;
}
