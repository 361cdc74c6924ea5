//! Reads a request body into memory under the gateway's limits: its size limit (checked on the
//! declared `Content-Length` before anything is read, then on the bytes actually read), the
//! shared memory budget, the body deadline and the minimum rate.

use bytes::Bytes;
use futures_util::StreamExt;
use poem::Body;

use crate::{
    error::ApiError,
    limits::{BoundedBuffer, Limits, Overflow, Reservation},
};

/// What a body is, for its error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Image,
    Json,
}

impl BodyKind {
    fn too_large(self, limit: usize) -> ApiError {
        match self {
            Self::Image => ApiError::image_too_large(limit),
            Self::Json => ApiError::json_too_large(limit),
        }
    }
}

fn refused(kind: BodyKind, limit: usize, overflow: Overflow) -> ApiError {
    match overflow {
        Overflow::TooLarge => kind.too_large(limit),
        Overflow::Budget => ApiError::memory_busy(),
        Overflow::AddressShare => ApiError::memory_share_busy(),
    }
}

/// Reads `body` (which declared `declared` bytes, if it did) into memory: at most `limit`
/// bytes, covered by `reservation` as it grows, before the deadlines of `limits`.
pub async fn read_body(
    body: Body,
    declared: Option<u64>,
    kind: BodyKind,
    limit: usize,
    limits: &Limits,
    reservation: Reservation,
) -> Result<(Bytes, Reservation), ApiError> {
    let declared = match declared.map(usize::try_from) {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err(kind.too_large(limit)),
        None => None,
    };
    let mut buffer =
        BoundedBuffer::new(reservation, limit, declared).map_err(|o| refused(kind, limit, o))?;
    let start = tokio::time::Instant::now();
    let mut stream = body.into_bytes_stream();
    loop {
        let deadline = limits.body_deadline(start, buffer.len());
        let stall = tokio::time::Instant::now() + limits.stall_timeout;
        let next = match tokio::time::timeout_at(deadline.min(stall), stream.next()).await {
            // The buffer (and the memory reserved for it) goes with the error, at once.
            Err(_) if stall < deadline => {
                return Err(ApiError::body_timeout(format!(
                    "no byte of the body came for {} s ({} bytes so far)",
                    limits.stall_timeout.as_secs_f32(),
                    buffer.len()
                )));
            }
            Err(_) => return Err(slow(limits, start, deadline, buffer.len())),
            Ok(next) => next,
        };
        match next {
            None => break,
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "bad_body",
                    format!("cannot read the body: {e}"),
                ));
            }
            Some(Ok(chunk)) => buffer.push(&chunk).map_err(|o| refused(kind, limit, o))?,
        }
    }
    let (data, reservation) = buffer.into_parts();
    Ok((Bytes::from(data), reservation))
}

fn slow(
    limits: &Limits,
    start: tokio::time::Instant,
    deadline: tokio::time::Instant,
    received: usize,
) -> ApiError {
    if deadline >= start + limits.body_timeout {
        ApiError::body_timeout(format!(
            "the body took longer than {} s",
            limits.body_timeout.as_secs()
        ))
    } else {
        ApiError::body_timeout(format!(
            "the body came slower than {} bytes/s ({received} bytes so far)",
            limits.min_body_rate
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::limits::Budget;

    fn chunks(parts: Vec<&'static [u8]>) -> Body {
        let stream = futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p))),
        );
        Body::from_bytes_stream(stream)
    }

    #[tokio::test]
    async fn reads_within_limits_and_refuses_beyond() {
        let (limits, budget) = (Limits::default(), Budget::new(1 << 20));
        let (bytes, held) = read_body(
            chunks(vec![b"abc", b"def"]),
            None,
            BodyKind::Image,
            10,
            &limits,
            budget.reservation(None),
        )
        .await
        .expect("fits");
        assert_eq!(&bytes[..], b"abcdef");
        assert!(held.held() >= 6);
        let err = read_body(
            chunks(vec![b"abcdef", b"ghijkl"]),
            None,
            BodyKind::Json,
            10,
            &limits,
            budget.reservation(None),
        )
        .await
        .expect_err("too large");
        assert_eq!(err.status.as_u16(), 413);
        assert!(err.message.contains("JSON"), "{}", err.message);
        let err = read_body(
            chunks(vec![]),
            Some(11),
            BodyKind::Image,
            10,
            &limits,
            budget.reservation(None),
        )
        .await
        .expect_err("declared too large");
        assert!(err.message.contains("image"), "{}", err.message);
    }

    #[tokio::test]
    async fn an_exhausted_budget_is_429() {
        let (limits, budget) = (Limits::default(), Budget::new(8));
        let err = read_body(
            chunks(vec![b"0123456789"]),
            None,
            BodyKind::Image,
            100,
            &limits,
            budget.reservation(None),
        )
        .await
        .expect_err("over budget");
        assert_eq!(err.status.as_u16(), 429);
        assert_eq!(budget.available(), 8, "nothing kept");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let limits = Limits {
            body_timeout: Duration::from_secs(30),
            min_body_rate: 1000,
            ..Limits::default()
        };
        let budget = Budget::new(1 << 20);
        let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
            b"some bytes",
        ))])
        .chain(futures_util::stream::pending());
        let err = read_body(
            Body::from_bytes_stream(stalled),
            None,
            BodyKind::Image,
            1 << 20,
            &limits,
            budget.reservation(None),
        )
        .await
        .expect_err("stalled");
        assert_eq!(err.status.as_u16(), 408);
        assert!(err.message.contains("slower"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_burst_then_silence_is_a_stall_and_gives_its_memory_back() {
        let limits = Limits {
            stall_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let budget = Budget::new(4 << 20);
        // Fast enough for any average rate, then nothing.
        let burst =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 3 << 20]))])
                .chain(futures_util::stream::pending());
        let started = std::time::Instant::now();
        let err = read_body(
            Body::from_bytes_stream(burst),
            Some(4 << 20),
            BodyKind::Image,
            4 << 20,
            &limits,
            budget.reservation(None),
        )
        .await
        .expect_err("stalled");
        assert_eq!(err.status.as_u16(), 408);
        assert!(err.message.contains("no byte"), "{}", err.message);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(budget.available(), 4 << 20, "the reservation is released");
    }
}
