//! Benchmarks of Stitch: criterion benches (`benches/`) and the tools the `bench/` scripts run
//! (`src/bin/`).
//!
//! The data comes from the load generator's generators (`stitch_loadgen`), so the
//! benchmarks, `stitch loadgen` and the scripts measure the same traces. The `shop` preset is
//! modelled on the OpenTelemetry demo's web shop (22 spans over ten services, about 290 bytes
//! per span as OTLP protobuf); output is deterministic for a given seed.

pub use stitch_loadgen::{Generator, Preset, Profile, Rng, Shape, Shop, Topology, now_unix_nanos};

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}
