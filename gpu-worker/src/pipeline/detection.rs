//! SSD post-processing as face-api does it: box decoding against the stored anchors, greedy
//! NMS, mapping to image pixels (undoing the bottom/right padding, or the centring on a larger
//! canvas of the second pass), and the clip-then-floor crop used for the landmark net.

use super::preprocess::{Canvas, CropRect};

/// Box in image pixels (floats), top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl BBox {
    /// Intersection over union of two pixel boxes (0 when either is empty).
    pub fn iou(&self, other: &BBox) -> f64 {
        let (a, b) = (self.width * self.height, other.width * other.height);
        if a <= 0.0 || b <= 0.0 {
            return 0.0;
        }
        let iw = ((self.x + self.width).min(other.x + other.width) - self.x.max(other.x)).max(0.0);
        let ih =
            ((self.y + self.height).min(other.y + other.height) - self.y.max(other.y)).max(0.0);
        let inter = iw * ih;
        inter / (a + b - inter)
    }
}

/// Decodes one box encoding `(ty, tx, th, tw)` against its anchor `(ymin, xmin, ymax, xmax)`
/// (tf-OD faster-rcnn coder, scales 10/10/5/5). Returns `(ymin, xmin, ymax, xmax)`.
pub fn decode_box(enc: [f32; 4], anchor: [f32; 4]) -> [f32; 4] {
    let (ha, wa) = (anchor[2] - anchor[0], anchor[3] - anchor[1]);
    let (ya, xa) = (anchor[0] + ha / 2.0, anchor[1] + wa / 2.0);
    let half_h = (enc[2] / 5.0).exp() * ha / 2.0;
    let yc = enc[0] / 10.0 * ha + ya;
    let half_w = (enc[3] / 5.0).exp() * wa / 2.0;
    let xc = enc[1] / 10.0 * wa + xa;
    [yc - half_h, xc - half_w, yc + half_h, xc + half_w]
}

/// face-api's IoU of two `(ymin, xmin, ymax, xmax)` boxes (corners normalised first).
pub fn iou_corners(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    let norm = |r: &[f32; 4]| {
        let r = r.map(f64::from);
        (
            r[0].min(r[2]),
            r[1].min(r[3]),
            r[0].max(r[2]),
            r[1].max(r[3]),
        )
    };
    let (ay0, ax0, ay1, ax1) = norm(a);
    let (by0, bx0, by1, bx1) = norm(b);
    let (area_a, area_b) = ((ay1 - ay0) * (ax1 - ax0), (by1 - by0) * (bx1 - bx0));
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let inter = (ay1.min(by1) - ay0.max(by0)).max(0.0) * (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
    inter / (area_a + area_b - inter)
}

/// Greedy NMS: candidates with `score > min_confidence`, stable-sorted by descending score,
/// each rejected when its IoU with an already selected box exceeds `iou_threshold`; at most
/// `max_results`. Returns the selected indices in selection order.
pub fn nms(
    scores: &[f32],
    boxes: &[[f32; 4]],
    min_confidence: f32,
    max_results: usize,
    iou_threshold: f64,
) -> Vec<usize> {
    let mut candidates: Vec<usize> = (0..scores.len().min(boxes.len()))
        .filter(|&i| scores[i] > min_confidence)
        .collect();
    candidates.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut selected: Vec<usize> = Vec::new();
    for c in candidates {
        if selected.len() >= max_results {
            break;
        }
        if !selected
            .iter()
            .rev()
            .any(|&s| iou_corners(&boxes[c], &boxes[s]) > iou_threshold)
        {
            selected.push(c);
        }
    }
    selected
}

/// Maps a normalised box of the padded `input`-sized square to image pixels for a `w`×`h`
/// image (clipped to the padded square, not to the image, like face-api).
pub fn to_image_box(b: [f32; 4], w: u32, h: u32, input: usize) -> BBox {
    let (w, h) = (f64::from(w), f64::from(h));
    let input = input as f64;
    let scale = input / w.max(h);
    let (rw, rh) = ((w * scale).round(), (h * scale).round());
    let (pad_x, pad_y) = (input / rw, input / rh);
    let b = b.map(f64::from);
    let (top, bottom) = (b[0].max(0.0) * pad_y, b[2].min(1.0) * pad_y);
    let (left, right) = (b[1].max(0.0) * pad_x, b[3].min(1.0) * pad_x);
    BBox {
        x: left * w,
        y: top * h,
        width: (right - left) * w,
        height: (bottom - top) * h,
    }
}

/// Maps a normalised `(ymin, xmin, ymax, xmax)` box of a [`Canvas`] the `w`×`h` image was
/// centred on back to image pixels, clipped to the image.
pub fn canvas_box_to_image(b: [f32; 4], canvas: Canvas, w: u32, h: u32) -> BBox {
    let side = f64::from(canvas.side);
    let b = b.map(f64::from);
    let (w, h) = (f64::from(w), f64::from(h));
    let x = |v: f64| (v * side - f64::from(canvas.x)).clamp(0.0, w);
    let y = |v: f64| (v * side - f64::from(canvas.y)).clamp(0.0, h);
    let (left, top) = (x(b[1].min(b[3])), y(b[0].min(b[2])));
    let (right, bottom) = (x(b[1].max(b[3])), y(b[0].max(b[2])));
    BBox {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    }
}

/// face-api `Box.clipAtImageBorders` then floor; `None` when nothing is left.
pub fn clip_box(b: &BBox, w: u32, h: u32) -> Option<CropRect> {
    let (iw, ih) = (f64::from(w), f64::from(h));
    let (x, y) = (b.x.max(0.0), b.y.max(0.0));
    let nw = (b.x + b.width - x).min(iw - x).floor();
    let nh = (b.y + b.height - y).min(ih - y).floor();
    let (x, y) = (x.floor(), y.floor());
    if !(nw >= 1.0 && nh >= 1.0 && x < iw && y < ih) {
        return None;
    }
    Some(CropRect {
        x: x as u32,
        y: y as u32,
        width: nw as u32,
        height: nh as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_values() {
        let a = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(iou_corners(&a, &a), 1.0);
        assert_eq!(iou_corners(&a, &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert!((iou_corners(&a, &[0.0, 0.5, 1.0, 1.5]) - 1.0 / 3.0).abs() < 1e-9);
        // Flipped corners are normalised; empty boxes give 0.
        assert_eq!(iou_corners(&[1.0, 1.0, 0.0, 0.0], &a), 1.0);
        assert_eq!(iou_corners(&[0.0, 0.0, 0.0, 1.0], &a), 0.0);
        let p = BBox {
            x: 0.0,
            y: 0.0,
            width: 2.0,
            height: 2.0,
        };
        let q = BBox {
            x: 1.0,
            y: 0.0,
            width: 2.0,
            height: 2.0,
        };
        assert!((p.iou(&q) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn nms_is_greedy_and_ordered() {
        let boxes = [
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 0.1, 1.0, 1.1], // IoU 0.82 with box 0
            [2.0, 2.0, 3.0, 3.0],
            [5.0, 5.0, 6.0, 6.0],
        ];
        let scores = [0.8, 0.9, 0.7, 0.5];
        assert_eq!(nms(&scores, &boxes, 0.5, 100, 0.5), vec![1, 2]);
        assert_eq!(nms(&scores, &boxes, 0.4, 100, 0.5), vec![1, 2, 3]);
        assert_eq!(nms(&scores, &boxes, 0.4, 1, 0.5), vec![1]);
        // Ties keep anchor order (stable sort).
        assert_eq!(
            nms(&[0.6, 0.6], &[boxes[2], boxes[3]], 0.5, 10, 0.5),
            vec![0, 1]
        );
    }

    #[test]
    fn decode_identity_and_mapping() {
        let anchor = [0.25, 0.25, 0.75, 0.75];
        assert_eq!(decode_box([0.0; 4], anchor), anchor);
        let shifted = decode_box([10.0, 0.0, 0.0, 0.0], anchor);
        assert!((shifted[0] - 0.75).abs() < 1e-6);
        // A 1024×512 image fills the top half of the square: y is stretched by 2.
        let b = to_image_box([0.0, 0.0, 0.25, 0.5], 1024, 512, 512);
        assert_eq!(
            b,
            BBox {
                x: 0.0,
                y: 0.0,
                width: 512.0,
                height: 256.0
            }
        );
    }

    #[test]
    fn canvas_boxes_map_back_and_clip() {
        // A 100×50 image centred on a 200 px canvas sits at (50, 75).
        let canvas = Canvas::centred(100, 50, 2.0, 0);
        assert_eq!(
            canvas,
            Canvas {
                side: 200,
                x: 50,
                y: 75
            }
        );
        let b = canvas_box_to_image([0.40, 0.30, 0.60, 0.55], canvas, 100, 50);
        assert!(
            (b.x - 10.0).abs() < 1e-4 && (b.y - 5.0).abs() < 1e-4,
            "{b:?}"
        );
        assert!(
            (b.width - 50.0).abs() < 1e-4 && (b.height - 40.0).abs() < 1e-4,
            "{b:?}"
        );
        assert_eq!(Canvas::centred(100, 50, 2.0, 512).side, 512);
        // Whatever lies in the black border is cut off.
        let b = canvas_box_to_image([0.0, 0.0, 1.0, 1.0], canvas, 100, 50);
        assert_eq!((b.x, b.y, b.width, b.height), (0.0, 0.0, 100.0, 50.0));
    }

    #[test]
    fn clip_then_floor() {
        let b = BBox {
            x: -3.5,
            y: 2.7,
            width: 10.0,
            height: 100.0,
        };
        assert_eq!(
            clip_box(&b, 50, 40),
            Some(CropRect {
                x: 0,
                y: 2,
                width: 6,
                height: 37
            })
        );
        assert_eq!(
            clip_box(
                &BBox {
                    x: 60.0,
                    y: 0.0,
                    width: 5.0,
                    height: 5.0
                },
                50,
                40
            ),
            None
        );
    }
}
