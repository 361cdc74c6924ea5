//! Errors of the model side of the worker.

use std::path::PathBuf;

use crate::{device::DeviceError, weights::WeightsError};

/// Loading or running the face pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(
        "weight file {path} does not fit the network ({source}); delete it and run {}",
        crate::weights::FETCH_COMMAND
    )]
    Layout {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("inference failed: {0}")]
    Inference(#[from] candle_core::Error),
}
