//! The broker around a [`System`]: queue counters, messages taken out or put in behind the
//! gateway's back, the `logs` exchange.

use std::time::{Duration, Instant};

use facematch_core::{
    ImageHash,
    amqp::{
        JobMeta, SCAN_ROUTING_KEY, Source, header_text,
        lapin::{
            BasicProperties, Connection, Consumer, Queue,
            options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions},
            types::FieldTable,
        },
    },
};
use futures_util::StreamExt;

use crate::System;

impl System {
    /// The test's own broker connection (declaring, inspecting, publishing around the gateway).
    pub fn inspector(&self) -> &Connection {
        &self.inspector
    }

    /// A queue's counters (messages ready, consumers); panics if it does not exist.
    pub async fn queue(&self, name: &str) -> Queue {
        let channel = self.inspector.create_channel().await.expect("channel");
        let queue = channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("queue {name}: {e}"));
        let _ = channel.close(200, "inspected".into()).await;
        queue
    }

    /// Messages waiting in the scan queue (without consuming them).
    pub async fn queue_len(&self) -> u32 {
        self.queue(&self.topology.scan_queue())
            .await
            .message_count()
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        self.queue(&self.topology.dead_queue())
            .await
            .message_count()
    }

    /// Takes every message out of the scan queue.
    pub async fn drain_queue(&self) -> Vec<(BasicProperties, Vec<u8>)> {
        let channel = self.inspector.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(msg) = channel
            .basic_get(
                self.topology.scan_queue().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("basic_get")
        {
            msg.delivery
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            out.push((msg.delivery.properties.clone(), msg.delivery.data.clone()));
        }
        out
    }

    /// Waits until the scan queue has `n` consumers (panics after `timeout`).
    pub async fn wait_scan_consumers(&self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let have = self
                .queue(&self.topology.scan_queue())
                .await
                .consumer_count();
            if have == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "scan queue has {have} consumers, not {n}, after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Publishes bytes straight to the queue, past the gateway's checks, as a hostile or buggy
    /// producer could; the image's record is made first, as a gateway would (a worker writes
    /// nothing for a job whose record is missing: an erased image).
    pub async fn publish_raw(&self, name: &str, bytes: &[u8]) -> ImageHash {
        let hash = ImageHash::of(bytes);
        self.store
            .claim_image(hash, std::time::Duration::from_secs(900))
            .await
            .expect("claim");
        let meta = JobMeta {
            hash,
            collection: Default::default(),
            epoch: None,
            name: name.into(),
            source: Source::Upload,
            content_type: "application/octet-stream".into(),
            trace_headers: vec![],
        };
        self.publisher
            .publish_job(&meta, bytes)
            .await
            .expect("publish");
        hash
    }

    /// Publishes a message without a `message_id` (not a job) straight to `toWorker`.
    pub async fn publish_malformed(&self, body: &[u8]) {
        let channel = self.inspector.create_channel().await.expect("channel");
        channel
            .basic_publish(
                self.topology.to_worker().into(),
                SCAN_ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish");
    }

    /// A consumer of the `logs` exchange bound with `pattern` (exclusive, auto-delete queue).
    pub async fn listen_logs(&self, pattern: &str) -> Consumer {
        let channel = self.inspector.create_channel().await.expect("channel");
        self.topology
            .subscribe_logs(&channel, &[pattern])
            .await
            .expect("subscribe to logs")
    }
}

/// Every (routing key, text) the consumer receives until it is quiet for `quiet`.
pub async fn drain_logs(consumer: &mut Consumer, quiet: Duration) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(quiet, consumer.next()).await {
        out.push((
            delivery.routing_key.to_string(),
            String::from_utf8_lossy(&delivery.data).into_owned(),
        ));
    }
    out
}

/// A message header's text value.
pub fn header(props: &BasicProperties, key: &str) -> Option<String> {
    props.headers().as_ref().and_then(|h| header_text(h, key))
}
