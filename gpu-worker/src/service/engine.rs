//! The engine: one OS thread that owns the device — the three networks and one face index per
//! collection, each loaded on first use — and serves commands from a bounded channel, so device
//! work never runs on tokio threads and one batch can be prepared while the last one runs.
//!
//! Each index remembers the epoch of the collection it was read from; a command naming
//! another epoch (the collection was deleted and made again) drops it and starts afresh, and
//! its memory goes with it.

use std::collections::HashMap;

use facematch_core::{Collection, store::FacelogPage};
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

/// What one inference answers: every image's faces, the stage timings, and the images
/// themselves, handed back for what is cut from them afterwards (thumbnails).
pub struct Inferred {
    pub faces: Vec<Vec<Face>>,
    pub timings: StageTimings,
    pub images: Vec<RgbImage>,
}

enum Command {
    Infer(Vec<RgbImage>, tracing::Span, Reply<Inferred>),
    Extend(Held, FacelogPage, Reply<IndexStats>),
    Stats(Held, Reply<IndexStats>),
    Search(Collection, Vec<Query>, f32, tracing::Span, Reply<Vec<Hit>>),
    Drop(Collection, Reply<IndexStats>),
}

/// Which index a command is for: a collection in one incarnation (`epoch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub collection: Collection,
    pub epoch: Option<String>,
}

/// Every collection's index on the engine thread.
struct Indexes {
    device: candle_core::Device,
    by_collection: HashMap<Collection, (Option<String>, FaceIndex)>,
}

impl Indexes {
    /// The index of `held`, made empty when absent or of another epoch.
    fn of(&mut self, held: Held) -> &mut FaceIndex {
        let device = &self.device;
        let entry = self
            .by_collection
            .entry(held.collection)
            .or_insert_with(|| (held.epoch.clone(), FaceIndex::new(device.clone())));
        if entry.0 != held.epoch {
            *entry = (held.epoch, FaceIndex::new(device.clone()));
        }
        &mut entry.1
    }

    fn stats(&self, index: Option<&FaceIndex>) -> IndexStats {
        IndexStats {
            faces: index.map_or(0, FaceIndex::len),
            bytes: index.map_or(0, FaceIndex::memory_bytes),
            last_id: index.and_then(FaceIndex::last_id),
            total_faces: self.by_collection.values().map(|(_, i)| i.len()).sum(),
            total_bytes: self
                .by_collection
                .values()
                .map(|(_, i)| i.memory_bytes())
                .sum(),
        }
    }
}

/// Size of one collection's index after a change, and of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub faces: usize,
    pub bytes: usize,
    pub last_id: Option<facematch_core::store::LogId>,
    /// Faces in every collection's index.
    pub total_faces: usize,
    /// Bytes of every collection's index.
    pub total_bytes: usize,
}

/// Cloneable handle to the engine thread.
#[derive(Debug, Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
}

/// Runs its closure when dropped: when the engine thread ends, returning or unwinding.
struct OnExit<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnExit<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl Engine {
    /// Moves the pipeline and an empty index onto a new thread; `on_stop` runs when that
    /// thread ends (only a panic or a device failure ends it while the worker serves).
    /// `fault_after` is a test hook: the thread panics on that inference command.
    pub fn start(
        pipeline: FacePipeline,
        fault_after: Option<u32>,
        on_stop: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Command>(1);
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let _on_stop = OnExit(Some(on_stop));
                let mut inferences = 0u32;
                let mut indexes = Indexes {
                    device: pipeline.device().clone(),
                    by_collection: HashMap::new(),
                };
                while let Some(command) = rx.blocking_recv() {
                    match command {
                        Command::Infer(images, span, reply) => {
                            inferences += 1;
                            if fault_after == Some(inferences) {
                                drop(reply);
                                panic!("engine fault injected by the test hook");
                            }
                            let _guard = span.enter();
                            let answer =
                                pipeline
                                    .run_timed(&images)
                                    .map(|(faces, timings)| Inferred {
                                        faces,
                                        timings,
                                        images,
                                    });
                            let _ = reply.send(answer.map_err(Into::into));
                        }
                        Command::Extend(held, page, reply) => {
                            let collection = held.collection.clone();
                            let index = indexes.of(held);
                            let result = index.extend(&page.faces).map(|()| {
                                // Erasures name only older faces, already read.
                                index.erase(&page.erased);
                                if let Some(last) = page.last {
                                    index.saw(last);
                                }
                            });
                            let stats =
                                indexes.stats(indexes.by_collection.get(&collection).map(|e| &e.1));
                            let _ = reply.send(result.map(|()| stats).map_err(Into::into));
                        }
                        Command::Stats(held, reply) => {
                            let collection = held.collection.clone();
                            indexes.of(held);
                            let stats =
                                indexes.stats(indexes.by_collection.get(&collection).map(|e| &e.1));
                            let _ = reply.send(Ok(stats));
                        }
                        Command::Search(collection, queries, threshold, span, reply) => {
                            let _guard = span.enter();
                            let answer = match indexes.by_collection.get(&collection) {
                                Some((_, index)) => {
                                    index.search(&queries, threshold).map_err(Into::into)
                                }
                                None => Ok(Vec::new()),
                            };
                            let _ = reply.send(answer);
                        }
                        Command::Drop(collection, reply) => {
                            indexes.by_collection.remove(&collection);
                            let _ = reply.send(Ok(indexes.stats(None)));
                        }
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Whether the engine thread still serves commands.
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
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
    pub async fn infer(&self, images: Vec<RgbImage>) -> Result<Inferred, EngineError> {
        let span = tracing::info_span!("inference", batch_size = images.len());
        self.call(|reply| Command::Infer(images, span, reply)).await
    }

    /// Adds a page of `facelog` to a collection's index (made afresh for a new epoch): its
    /// faces added, its erased faces dropped.
    pub async fn extend(&self, held: Held, page: FacelogPage) -> Result<IndexStats, EngineError> {
        self.call(|reply| Command::Extend(held, page, reply)).await
    }

    /// A collection's index size and newest entry (an index of another epoch is dropped
    /// first); also shows the engine thread is alive.
    pub async fn stats(&self, held: Held) -> Result<IndexStats, EngineError> {
        self.call(|reply| Command::Stats(held, reply)).await
    }

    /// Older faces of other images of `collection` within `threshold` of each query.
    pub async fn search(
        &self,
        collection: Collection,
        queries: Vec<Query>,
        threshold: f32,
    ) -> Result<Vec<Hit>, EngineError> {
        let span = tracing::info_span!("match", faces = queries.len(), collection = %collection);
        self.call(|reply| Command::Search(collection, queries, threshold, span, reply))
            .await
    }

    /// Forgets a collection's index (its collection was deleted); the memory is freed.
    pub async fn drop_index(&self, collection: Collection) -> Result<IndexStats, EngineError> {
        self.call(|reply| Command::Drop(collection, reply)).await
    }
}
