//! `facematch status HASH`: what the gateway knows about one image (`GET /images/{hash}`),
//! as readable text or, with `--json`, the document as sent.

use std::fmt::Write as _;

use clap::Args;
use facematch_core::ImageHash;

use crate::{
    exit::Outcome,
    http::{Gateway, GatewayArgs, ImageDoc},
    output::utc,
};

/// `facematch status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The image's hash (32 hex characters, as printed by `facematch scan`).
    pub hash: ImageHash,

    /// Wait up to SECONDS (at most 60) for the image to be done or failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,

    /// Print the gateway's JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `facematch status`: exit 1 for an unknown hash or a failed image.
pub async fn run(gateway: &GatewayArgs, args: StatusArgs) -> anyhow::Result<Outcome> {
    let gateway = Gateway::connect(gateway)?;
    let doc = match gateway.image(args.hash, args.wait).await {
        Ok(doc) => doc,
        Err(e) if !e.is_connection() => {
            eprintln!("facematch: {}: {e}", args.hash);
            return Ok(Outcome::SomeFailed);
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&doc));
    }
    Ok(if doc.state == "failed" {
        Outcome::SomeFailed
    } else {
        Outcome::Ok
    })
}

/// The status document as aligned `field: value` lines.
fn render(doc: &ImageDoc) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{:<9}{value}", format!("{name}:"));
    };
    field("hash", &doc.hash);
    field("state", &doc.state);
    field("names", &doc.names.join(", "));
    if let (Some(w), Some(h)) = (doc.width, doc.height) {
        field("size", &format!("{w}×{h}"));
    }
    if let Some(n) = doc.face_count {
        field("faces", &n.to_string());
    }
    if let Some(model) = &doc.model {
        field("model", model);
    }
    if let Some(error) = &doc.error {
        field("error", error);
    }
    if let Some(t) = doc.created_at {
        field("created", &utc(t));
    }
    if let Some(t) = doc.updated_at {
        field("updated", &utc(t));
    }
    for (i, face) in doc.faces.iter().enumerate() {
        let b = &face.bbox;
        let _ = writeln!(
            out,
            "  face {}: score {:.3}, box {:.0},{:.0} {:.0}×{:.0}",
            i + 1,
            face.score,
            b.x,
            b.y,
            b.width,
            b.height
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_fields() {
        let doc: ImageDoc = serde_json::from_value(serde_json::json!({
            "hash": "0".repeat(32), "state": "done", "names": ["a.jpg", "b.jpg"],
            "width": 640, "height": 480, "face_count": 1,
            "faces": [{"score": 0.9, "box": {"x": 1.0, "y": 2.0, "width": 30.0, "height": 40.0},
                       "landmarks": []}],
            "model": "m", "error": null, "created_at": 0, "updated_at": null
        }))
        .expect("doc");
        let text = render(&doc);
        assert!(text.contains("state:   done\n"), "{text}");
        assert!(text.contains("names:   a.jpg, b.jpg\n"), "{text}");
        assert!(
            text.contains("face 1: score 0.900, box 1,2 30×40"),
            "{text}"
        );
    }
}
