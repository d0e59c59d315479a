//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading the engine or reading an image.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// `libonnxruntime` was not found or could not be loaded. `path` is the
    /// library tried last (or empty when nothing was found); `reason` lists
    /// where the search looked.
    #[error("ONNX Runtime library {}: {reason}", path.display())]
    Runtime { path: PathBuf, reason: String },
    /// The model directory, one of the three models or the character
    /// dictionary is missing or unreadable.
    #[error("OCR models in {}: {reason}", dir.display())]
    Models { dir: PathBuf, reason: String },
    /// A session could not be created (bad model file, execution provider
    /// not available, ...).
    #[error("ONNX Runtime session: {0}")]
    Session(String),
    /// The image description does not match its pixel buffer.
    #[error("bad image: {0}")]
    BadImage(String),
    /// Running a model failed or it returned something unexpected.
    #[error("inference: {0}")]
    Inference(String),
}

impl OcrError {
    pub(crate) fn inference(e: impl std::fmt::Display) -> Self {
        Self::Inference(e.to_string())
    }
}
