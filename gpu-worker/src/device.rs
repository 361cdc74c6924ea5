//! Device selection from a string: `auto`, `cpu`, `cuda` or `cuda:N`.

use candle_core::Device;

/// A device specification that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device {0:?}: expected auto, cpu, cuda or cuda:N")]
    Parse(String),
    #[error("cannot open {spec}: {source} (build with --features cuda, and check the driver)")]
    Unavailable {
        spec: String,
        source: candle_core::Error,
    },
}

/// Parses and opens a device. `auto` tries CUDA device 0 and falls back to the CPU with one
/// warning; an explicit `cuda`/`cuda:N` that cannot be opened is an error.
pub fn select_device(spec: &str) -> Result<Device, DeviceError> {
    let s = spec.trim().to_ascii_lowercase();
    let ordinal = match s.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "auto" => {
            return Ok(match Device::new_cuda(0) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "no usable CUDA device, running the models on the CPU");
                    Device::Cpu
                }
            });
        }
        "cuda" => 0,
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| DeviceError::Parse(spec.to_owned()))?,
    };
    Device::new_cuda(ordinal).map_err(|source| DeviceError::Unavailable {
        spec: spec.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert!(matches!(select_device("cpu"), Ok(Device::Cpu)));
        assert!(select_device("auto").is_ok());
        assert!(matches!(select_device("gpu"), Err(DeviceError::Parse(_))));
        assert!(matches!(
            select_device("cuda:x"),
            Err(DeviceError::Parse(_))
        ));
        #[cfg(not(feature = "cuda"))]
        assert!(matches!(
            select_device("cuda:1"),
            Err(DeviceError::Unavailable { .. })
        ));
    }
}
