//! Micro-batching: wait for the first item, then take whatever arrives until `max` items or
//! `max_wait` has passed.

use std::time::Duration;

use tokio::sync::mpsc;

/// The next batch, or `None` once the channel is closed and empty.
pub async fn next_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    max: usize,
    max_wait: Duration,
) -> Option<Vec<T>> {
    let first = rx.recv().await?;
    let mut batch = Vec::with_capacity(max);
    batch.push(first);
    let deadline = tokio::time::Instant::now() + max_wait;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => batch.push(item),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn takes_what_is_ready_up_to_max() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..5 {
            tx.send(i).await.expect("send");
        }
        let wait = Duration::from_millis(20);
        assert_eq!(next_batch(&mut rx, 3, wait).await, Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&mut rx, 3, wait).await, Some(vec![3, 4]));
        drop(tx);
        assert_eq!(next_batch(&mut rx, 3, wait).await, None);
    }

    #[tokio::test]
    async fn waits_at_most_max_wait_after_the_first() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.expect("send");
        let started = tokio::time::Instant::now();
        assert_eq!(
            next_batch(&mut rx, 8, Duration::from_millis(30)).await,
            Some(vec![1])
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        drop(tx);
    }
}
