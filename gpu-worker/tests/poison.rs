//! The workers' own poison budget and the dead-letter queue: a job whose processing already
//! started `FACEMATCH_MAX_ATTEMPTS` times is failed and dead-lettered alone; every job that
//! reaches `facematch.dead` is marked `failed` with a `dead-lettered:` reason; and a deployment
//! from before `facematch.scan.v2` has its first-version queue retired and drained.

use std::time::Duration;

use facematch_core::{
    amqp::{
        JobMeta, Source,
        lapin::{options::BasicPublishOptions, types::AMQPValue},
    },
    store::DEAD_LETTERED,
};
use facematch_testkit::{
    System,
    images::{face_crop, no_face},
    within,
};
use image::ImageFormat;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_out_of_attempts_fails_alone_and_a_suspect_runs_alone() {
    within(async {
        let sys = System::new("poison").await;
        let poison = sys.scan("poison.png", no_face()).await;
        let suspect = sys
            .scan("suspect.png", face_crop(1, 0, 1.0, ImageFormat::Png))
            .await;
        let innocent = sys
            .scan("innocent.png", face_crop(1, 1, 1.0, ImageFormat::Png))
            .await;
        // As crashed workers would have left them: 3 starts for the poison job, 2 for the
        // suspect, with a budget of 3.
        sys.set_attempts(poison, 3).await;
        sys.set_attempts(suspect, 2).await;
        let mut args = sys.worker_args(4);
        args.limits.max_attempts = 3;
        let worker = sys.start_worker(args);

        let status = sys.wait_final(poison, WAIT).await;
        assert_eq!(status["state"], "failed", "{status}");
        let error = status["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(DEAD_LETTERED) && error.contains("3 times"),
            "{error}"
        );
        assert_eq!(
            sys.attempts(poison).await,
            0,
            "a re-queued job starts afresh"
        );
        for h in [suspect, innocent] {
            let status = sys.wait_final(h, WAIT).await;
            assert_eq!(status["state"], "done", "{status}");
        }
        assert_eq!(sys.attempts(suspect).await, 3, "one more start, then done");
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

/// A job the broker dead-lettered (its backstop delivery limit) is marked failed with the
/// reason, instead of staying `queued` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_is_marked_failed_with_the_reason() {
    within(async {
        let sys = System::new("dead-letter").await;
        let bytes = no_face();
        let hash = facematch_core::ImageHash::of(&bytes);
        // Accepted (queued) but its message is in the dead-letter queue, not the scan queue.
        sys.store
            .claim_image(hash, std::time::Duration::from_secs(900))
            .await
            .expect("claim");
        sys.store.confirm_queued(hash).await.expect("queued");
        let meta = JobMeta {
            hash,
            collection: Default::default(),
            epoch: None,
            name: "dead.png".into(),
            source: Source::Upload,
            content_type: "image/png".into(),
            trace_headers: vec![],
        };
        let mut props = meta.properties();
        let mut headers = props.headers().clone().unwrap_or_default();
        for (k, v) in [
            ("x-first-death-reason", "delivery_limit"),
            ("x-first-death-queue", "facematch.scan.v2"),
        ] {
            headers.insert(k.into(), AMQPValue::LongString(v.into()));
        }
        props = props.with_headers(headers);
        let channel = sys.inspector().create_channel().await.expect("channel");
        channel
            .basic_publish(
                sys.topology.dead_exchange().into(),
                "".into(),
                BasicPublishOptions::default(),
                &bytes,
                props,
            )
            .await
            .expect("publish");
        let worker = sys.start_worker(sys.worker_args(2));
        let status = sys.wait_final(hash, WAIT).await;
        assert_eq!(status["state"], "failed", "{status}");
        let error = status["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(DEAD_LETTERED) && error.contains("delivery limit"),
            "{error}"
        );
        // Consumed: the record is the image's state.
        let deadline = std::time::Instant::now() + WAIT;
        while sys.dead_letters().await > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "dead letter not consumed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}

/// An existing deployment's `facematch.scan` (delivery limit 5) cannot be redeclared with new
/// arguments: the worker unbinds it, drains what it holds, and new jobs go to the new queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_version_queue_is_retired_and_drained() {
    within(async {
        let sys = System::new("legacy").await;
        let channel = sys.inspector().create_channel().await.expect("channel");
        sys.topology
            .declare_legacy(&channel)
            .await
            .expect("legacy queue");
        // Queued under the old topology: the job sits in the legacy queue (and, bound to the
        // same key, in the new one).
        let old = sys
            .scan("old.png", face_crop(2, 0, 1.0, ImageFormat::Png))
            .await;
        assert_eq!(
            sys.queue(&sys.topology.legacy_scan_queue())
                .await
                .message_count(),
            1
        );
        let worker = sys.start_worker(sys.worker_args(2));
        assert_eq!(sys.wait_final(old, WAIT).await["state"], "done");
        let deadline = std::time::Instant::now() + WAIT;
        while sys
            .queue(&sys.topology.legacy_scan_queue())
            .await
            .message_count()
            > 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "legacy queue not drained"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.stop().await;
        // Unbound: a new job goes to the new queue only.
        sys.scan("new.png", no_face()).await;
        let legacy = sys.queue(&sys.topology.legacy_scan_queue()).await;
        let current = sys.queue(&sys.topology.scan_queue()).await;
        assert_eq!((legacy.message_count(), current.message_count()), (0, 1));
        sys.cleanup().await;
    })
    .await;
}

/// A job whose own Redis record refuses every command (a wrong-typed key) is dead-lettered
/// once and dropped, never retried for ever, and the innocent job of its batch still ends done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_record_is_damaged_is_dead_lettered_once_not_retried_for_ever() {
    within(async {
        let sys = System::new("damaged").await;
        let damaged = sys.scan("damaged.png", no_face()).await;
        let innocent = sys
            .scan("innocent.png", face_crop(1, 0, 1.0, ImageFormat::Png))
            .await;
        // The record made a string: every hash command on it answers WRONGTYPE.
        let mut conn = sys.store.conn().await.expect("redis");
        let _: () = facematch_core::store::redis::cmd("SET")
            .arg(sys.store.keys().image(damaged))
            .arg("not a hash")
            .query_async(&mut conn)
            .await
            .expect("set");
        let (args, metrics) = sys.worker_args_with_metrics(4);
        let worker = sys.start_worker(args);

        let status = sys.wait_final(innocent, WAIT).await;
        assert_eq!(status["state"], "done", "{status}");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let counted = facematch_testkit::worker_metrics(&metrics).await;
            let damaged_jobs = counted
                .get(r#"facematch_worker_jobs_total{outcome="damaged"}"#)
                .copied()
                .unwrap_or(0.0);
            if damaged_jobs >= 2.0 && sys.queue_len().await == 0 && sys.dead_letters().await == 0 {
                // Once by the worker (rejected to the dead-letter queue), once by the
                // dead-letter consumer (its mark refused, dropped): and no more.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let again = facematch_testkit::worker_metrics(&metrics).await;
                assert_eq!(
                    again
                        .get(r#"facematch_worker_jobs_total{outcome="damaged"}"#)
                        .copied(),
                    Some(2.0),
                    "{again:?}"
                );
                assert_eq!(
                    again
                        .get(r#"facematch_worker_jobs_total{outcome="requeued"}"#)
                        .copied(),
                    None,
                    "nothing was requeued"
                );
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{counted:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        worker.stop().await;
        sys.cleanup().await;
    })
    .await;
}
