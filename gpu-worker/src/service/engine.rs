//! The engine: one OS thread that owns the device — the three networks and the face index —
//! and serves commands from a bounded channel, so device work never runs on tokio threads and
//! one batch can be prepared while the last one runs.

use facematch_core::store::FacelogEntry;
use image::RgbImage;
use tokio::sync::{mpsc, oneshot};

use crate::index::{FaceIndex, Hit, IndexError, Query};
use crate::{Face, FacePipeline, ModelError, StageTimings};

/// Why the engine could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("face index: {0}")]
    Index(#[from] IndexError),
    #[error("the engine thread has stopped")]
    Stopped,
}

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

enum Command {
    Infer(
        Vec<RgbImage>,
        tracing::Span,
        Reply<(Vec<Vec<Face>>, StageTimings)>,
    ),
    Extend(Vec<FacelogEntry>, Reply<IndexStats>),
    Stats(Reply<IndexStats>),
    Search(Vec<Query>, f32, tracing::Span, Reply<Vec<Hit>>),
}

/// Size of the index after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub faces: usize,
    pub bytes: usize,
    pub last_id: Option<facematch_core::store::LogId>,
}

impl IndexStats {
    fn of(index: &FaceIndex) -> Self {
        Self {
            faces: index.len(),
            bytes: index.memory_bytes(),
            last_id: index.last_id(),
        }
    }
}

/// Cloneable handle to the engine thread.
#[derive(Debug, Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
}

impl Engine {
    /// Moves the pipeline and an empty index onto a new thread.
    pub fn start(pipeline: FacePipeline) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Command>(1);
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let mut index = FaceIndex::new(pipeline.device().clone());
                while let Some(command) = rx.blocking_recv() {
                    match command {
                        Command::Infer(images, span, reply) => {
                            let _guard = span.enter();
                            let _ = reply.send(pipeline.run_timed(&images).map_err(Into::into));
                        }
                        Command::Extend(entries, reply) => {
                            let result = index.extend(&entries).map(|()| IndexStats::of(&index));
                            let _ = reply.send(result.map_err(Into::into));
                        }
                        Command::Stats(reply) => {
                            let _ = reply.send(Ok(IndexStats::of(&index)));
                        }
                        Command::Search(queries, threshold, span, reply) => {
                            let _guard = span.enter();
                            let _ =
                                reply.send(index.search(&queries, threshold).map_err(Into::into));
                        }
                    }
                }
            })?;
        Ok(Self { tx })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Stopped)?;
        answer.await.map_err(|_| EngineError::Stopped)?
    }

    /// Detect, landmark and describe every face of a batch of images.
    pub async fn infer(
        &self,
        images: Vec<RgbImage>,
    ) -> Result<(Vec<Vec<Face>>, StageTimings), EngineError> {
        let span = tracing::info_span!("inference", batch_size = images.len());
        self.call(|reply| Command::Infer(images, span, reply)).await
    }

    /// Adds `facelog` entries to the index.
    pub async fn extend(&self, entries: Vec<FacelogEntry>) -> Result<IndexStats, EngineError> {
        self.call(|reply| Command::Extend(entries, reply)).await
    }

    /// The index's size and newest entry; also shows the engine thread is alive.
    pub async fn stats(&self) -> Result<IndexStats, EngineError> {
        self.call(Command::Stats).await
    }

    /// Older faces of other images within `threshold` of each query.
    pub async fn search(
        &self,
        queries: Vec<Query>,
        threshold: f32,
    ) -> Result<Vec<Hit>, EngineError> {
        let span = tracing::info_span!("match", faces = queries.len());
        self.call(|reply| Command::Search(queries, threshold, span, reply))
            .await
    }
}
