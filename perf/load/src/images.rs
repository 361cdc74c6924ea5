//! The end-to-end image set: the six demo photos and variants of each that a real pile of
//! images holds (a re-encoding, a smaller copy, a centre crop, a mirror image), 30 distinct
//! images in all. Variants of one photo show the same people, so they should match.

use std::{io::Cursor, path::Path};

use anyhow::Context;
use image::{DynamicImage, codecs::jpeg::JpegEncoder, imageops::FilterType};

/// One image of the set: a name and its JPEG bytes.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn jpeg(img: &DynamicImage, quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut out), quality).encode_image(img)?;
    Ok(out)
}

/// The 30 images made from `demo_dir/sample{1..6}.jpg`.
pub fn image_set(demo_dir: &Path) -> anyhow::Result<Vec<Named>> {
    let mut set = Vec::new();
    for i in 1..=6 {
        let path = demo_dir.join(format!("sample{i}.jpg"));
        let original = std::fs::read(&path)
            .with_context(|| format!("{} (run scripts/fetch-weights.sh)", path.display()))?;
        let img = image::load_from_memory(&original)?;
        let (w, h) = (img.width(), img.height());
        let half = img.resize(w / 2, h / 2, FilterType::Triangle);
        let crop = img.crop_imm(w * 15 / 100, h * 15 / 100, w * 70 / 100, h * 70 / 100);
        set.push(Named {
            name: format!("s{i}.jpg"),
            bytes: original,
        });
        set.push(Named {
            name: format!("s{i}-q75.jpg"),
            bytes: jpeg(&img, 75)?,
        });
        set.push(Named {
            name: format!("s{i}-half.jpg"),
            bytes: jpeg(&half, 90)?,
        });
        set.push(Named {
            name: format!("s{i}-crop.jpg"),
            bytes: jpeg(&crop, 90)?,
        });
        set.push(Named {
            name: format!("s{i}-mirror.jpg"),
            bytes: jpeg(&img.fliph(), 90)?,
        });
    }
    Ok(set)
}
