//! The configuration file (`stitch serve --config stitch.yaml`) and its defaults.
//!
//! Every field is optional; command-line flags override the file. Unknown fields are errors,
//! reported with their path, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    /// How long to keep traces, e.g. `7d`, `36h`.
    pub retention: Option<String>,
    #[serde(default)]
    pub listen: ListenConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub zipkin: ZipkinSection,
    /// Head, tail and adaptive sampling (`stitch_pipeline::config`; an annotated example is
    /// `stitch.sampling.example.yaml`). Absent: every trace is kept, without buffering.
    #[serde(default)]
    pub sampling: Option<stitch_pipeline::SamplingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    pub otlp_grpc: Option<SocketAddr>,
    pub otlp_http: Option<SocketAddr>,
    pub query: Option<SocketAddr>,
    /// Zipkin collector and Zipkin v2 query API.
    pub zipkin: Option<SocketAddr>,
    /// Jaeger agent, UDP, Thrift compact protocol.
    pub jaeger_agent_compact: Option<SocketAddr>,
    /// Jaeger agent, UDP, Thrift binary protocol.
    pub jaeger_agent_binary: Option<SocketAddr>,
    /// Jaeger collector, HTTP (`POST /api/traces`).
    pub jaeger_http: Option<SocketAddr>,
    /// Jaeger gRPC: the collector (`jaeger.api_v2.CollectorService`) and remote sampling
    /// (`jaeger.api_v2.SamplingManager`).
    pub jaeger_grpc: Option<SocketAddr>,
    /// Jaeger remote sampling, HTTP (`GET /sampling?service=`).
    pub sampling: Option<SocketAddr>,
    /// Tempo's query API (Grafana's Tempo data source).
    pub tempo: Option<SocketAddr>,
    /// Host names the query API, the UI and Zipkin's query API answer for, besides IP
    /// addresses and loopback names (`.example.com`: every name under it; `*`: any).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to send spans (`http://localhost:3000`; `*`: any).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request, before and after decompression, in bytes.
    pub max_request_bytes: Option<usize>,
    /// Memory all requests in flight may hold together, in bytes.
    pub max_inflight_bytes: Option<usize>,
    /// Spans lasting longer are rejected, e.g. `7d` [default: 7d].
    pub max_span_duration: Option<String>,
    /// A request body must arrive whole within this long, e.g. `30s` [default: 30s].
    pub request_body_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Flush the in-memory head to a block at this many spans.
    pub head_max_spans: Option<usize>,
    /// ... or at this age, e.g. `2m`.
    pub head_max_age: Option<String>,
    /// ... or at this many bytes of memory.
    pub head_max_bytes: Option<usize>,
    /// Sync the write-ahead log before acknowledging. Turning this off loses acknowledged
    /// spans on a machine crash; it exists for benchmarks.
    pub fsync: Option<bool>,
    /// Refuse appends (503, retry later) while the data directory's file system has fewer
    /// bytes free; 0 turns the check off [default: 5% of the file system, at most 128 MiB].
    pub min_free_bytes: Option<u64>,
    /// Memory for the Parquet footers of recently read blocks; the least recently read beyond
    /// it are loaded again when needed [default: 64 MiB; about 0.35 MB per block of 250K spans].
    pub footer_cache_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZipkinSection {
    /// Keys the Zipkin API's `autocompleteKeys` offers (Zipkin's `AUTOCOMPLETE_KEYS`).
    pub autocomplete_keys: Option<Vec<String>>,
    /// Take a span list sent without `Content-Type` as JSON, as Zipkin's own server does, for
    /// reporters that send none [default: false, such a request is a 415].
    pub accept_missing_content_type: Option<bool>,
}

impl FileConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read config file {}", path.display()))?;
        FileConfig::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        let de = serde_yaml::Deserializer::from_str(text);
        let config: FileConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("at `{path}`: {}", e.into_inner())
        })?;
        if let Some(r) = &config.retention {
            parse_duration("retention", r)?;
        }
        if let Some(a) = &config.store.head_max_age {
            parse_duration("store.head_max_age", a)?;
        }
        if config.limits.max_request_bytes == Some(0) {
            bail!("at `limits.max_request_bytes`: must be greater than zero");
        }
        if let Some(sampling) = &config.sampling
            && let Err(e) = sampling.validate()
        {
            let lines: Vec<String> = e
                .errors
                .iter()
                .map(|f| format!("at `{}`: {}", f.path, f.message))
                .collect();
            bail!("{}", lines.join("\n"));
        }
        Ok(config)
    }
}

/// Parses `7d`, `36h`, `90s`, `1h30m`, naming the field on error.
pub fn parse_duration(field: &str, text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        anyhow::anyhow!("at `{field}`: {text:?} is not a duration ({e}); use e.g. 7d, 36h, 90s")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_file_parses() {
        let c = FileConfig::parse(
            "data_dir: /var/lib/stitch\nretention: 3d\nlisten:\n  otlp_grpc: 127.0.0.1:14317\nlimits:\n  max_request_bytes: 1024\nstore:\n  head_max_age: 30s\n  fsync: true\n",
        )
        .unwrap();
        assert_eq!(c.data_dir.as_deref(), Some(Path::new("/var/lib/stitch")));
        assert_eq!(c.listen.otlp_grpc, Some("127.0.0.1:14317".parse().unwrap()));
        assert_eq!(c.limits.max_request_bytes, Some(1024));
    }

    #[test]
    fn zipkin_settings_parse() {
        let c = FileConfig::parse(
            "listen:\n  zipkin: 0.0.0.0:9411\nzipkin:\n  autocomplete_keys: [http.method, env]\n",
        )
        .unwrap();
        assert_eq!(c.listen.zipkin, Some("0.0.0.0:9411".parse().unwrap()));
        assert_eq!(
            c.zipkin.autocomplete_keys,
            Some(vec!["http.method".to_owned(), "env".to_owned()])
        );
        assert!(FileConfig::parse("zipkin:\n  autocomplete: []\n").is_err());
    }

    #[test]
    fn an_unknown_field_is_an_error_that_names_its_path() {
        let err = FileConfig::parse("store:\n  head_max_span: 5\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("store"), "{msg}");
        assert!(msg.contains("head_max_span"), "{msg}");
    }

    #[test]
    fn the_sampling_section_is_validated_with_field_paths() {
        let c = FileConfig::parse("sampling:\n  preset: seed\n  decision_wait: 2s\n").unwrap();
        let s = c.sampling.unwrap();
        assert_eq!(s.effective_policies().len(), 3);
        assert_eq!(s.decision_wait, Duration::from_secs(2));
        assert!(
            FileConfig::parse("data_dir: x\n")
                .unwrap()
                .sampling
                .is_none()
        );

        let err = FileConfig::parse(
            "sampling:\n  policies:\n    - {name: slow, type: latency, latency: {threshold_ms: 0}}\n",
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("at `sampling.policies[0].latency.threshold_ms`"),
            "{msg}"
        );
        let err = FileConfig::parse("sampling:\n  decision_wiat: 1s\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("sampling"), "{msg}");
        assert!(msg.contains("decision_wiat"), "{msg}");
        let err = FileConfig::parse("sampling:\n  head: {percentage: 200}\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("at `sampling.head.percentage`"),
            "{err:#}"
        );
    }

    #[test]
    fn a_bad_duration_names_the_field() {
        let err = FileConfig::parse("retention: forever\n").unwrap_err();
        assert!(format!("{err:#}").contains("at `retention`"), "{err:#}");
    }
}
