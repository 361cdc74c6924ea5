//! Housekeeping on the shared broker and Redis: empty a queue between load points (no worker
//! consumes during the upload benchmark, and a minute of 100 KB uploads is gigabytes), and
//! delete everything a facematch run declared and wrote under its prefixes.

use facematch_core::amqp::{
    Topology,
    lapin::{Channel, Connection, ConnectionProperties, options::QueuePurgeOptions},
};

async fn with_channel<T>(
    amqp_url: &str,
    f: impl AsyncFnOnce(&Channel) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let out = f(&channel).await;
    let _ = connection.close(200, "done".into()).await;
    out
}

/// Drops every ready message of `queue`; returns how many.
pub async fn purge(amqp_url: &str, queue: &str) -> anyhow::Result<u32> {
    with_channel(amqp_url, async |channel| {
        Ok(channel
            .queue_purge(queue.into(), QueuePurgeOptions::default())
            .await?)
    })
    .await
}

/// Deletes a facematch run's exchanges and queues (`amqp_prefix`) and Redis keys
/// (`key_prefix`); returns how many keys went.
pub async fn cleanup(
    amqp_url: &str,
    redis_url: &str,
    amqp_prefix: &str,
    key_prefix: &str,
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        !amqp_prefix.is_empty(),
        "refusing to delete the seed's own names"
    );
    anyhow::ensure!(key_prefix.len() > 3, "refusing a short key prefix");
    with_channel(amqp_url, async |channel| {
        Ok(Topology::new(amqp_prefix).delete(channel).await?)
    })
    .await?;
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut removed = 0u64;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{key_prefix}*"))
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            removed += redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}
