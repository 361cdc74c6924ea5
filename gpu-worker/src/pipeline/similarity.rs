//! The least-squares 2-D similarity transform (rotation, uniform scale, translation) that dlib
//! fits its mean face onto a face's landmarks with.

/// A 2-D similarity transform `q ↦ [[a, -b], [b, a]]·q + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// Uniform scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }
}

/// Least-squares similarity mapping `from[i]` onto `to[i]` (Umeyama 1991). In 2-D the
/// rotation-only solution has this closed form, which equals dlib's SVD route whenever the
/// best fit is a proper rotation (always, for a face template onto landmarks).
pub fn fit_similarity(from: &[[f64; 2]], to: &[[f64; 2]]) -> Similarity {
    let n = from.len().min(to.len()).max(1) as f64;
    let centroid = |v: &[[f64; 2]]| {
        let (sx, sy) = v
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
        [sx / n, sy / n]
    };
    let (mf, mt) = (centroid(from), centroid(to));
    let (mut var, mut a, mut b) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f[0] - mf[0], f[1] - mf[1]);
        let (tx, ty) = (t[0] - mt[0], t[1] - mt[1]);
        var += fx * fx + fy * fy;
        a += fx * tx + fy * ty;
        b += fx * ty - fy * tx;
    }
    let (a, b) = if var > 0.0 {
        (a / var, b / var)
    } else {
        (1.0, 0.0)
    };
    Similarity {
        a,
        b,
        tx: mt[0] - (a * mf[0] - b * mf[1]),
        ty: mt[1] - (b * mf[0] + a * mf[1]),
    }
}
