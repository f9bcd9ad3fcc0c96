//! `stitch loadgen`: the command line of the load generator in `stitch_loadgen`.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use stitch_loadgen::{
    LoadOptions, Preset, Protocol, RetryPolicy, Shape, Stop, Topology, VerifyOptions,
};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  stitch loadgen --duration 30s                                  # shop traces over OTLP/gRPC, as fast as acknowledged
  stitch loadgen --protocol otlp-http-json --rate 20000 --spans 1000000 --verify
  stitch loadgen --protocol jaeger-thrift-udp --rate 5000 --duration 10s --verify
  stitch loadgen --preset synthetic --spans-per-trace 200 --depth 8 --fan-out 5 --services 12")]
pub struct LoadgenArgs {
    /// otlp-grpc, otlp-http-protobuf, otlp-http-json, zipkin-json, jaeger-thrift-udp (agent)
    /// or jaeger-thrift-http (collector).
    #[arg(long, default_value = "otlp-grpc")]
    protocol: Protocol,
    /// Where to send: host:port or a URL [default: the protocol's standard port on 127.0.0.1].
    #[arg(long)]
    endpoint: Option<String>,
    /// shop (the OpenTelemetry demo's checkout: 22 spans, 10 services), large-attributes
    /// (the shop with eight 256-byte attributes per span) or synthetic (any shape).
    #[arg(long, default_value = "shop")]
    preset: Preset,
    /// Synthetic traces only: distinct services [default: 8].
    #[arg(long)]
    services: Option<usize>,
    /// Synthetic traces only: spans per trace [default: 20].
    #[arg(long)]
    spans_per_trace: Option<usize>,
    /// Synthetic traces only: levels of the span tree [default: 4].
    #[arg(long)]
    depth: Option<usize>,
    /// Synthetic traces only: most children of a span [default: 4].
    #[arg(long)]
    fan_out: Option<usize>,
    /// Attributes added to every span on top of the preset's own [default: by preset].
    #[arg(long)]
    attributes: Option<usize>,
    /// Size of each added attribute value, in bytes [default: by preset].
    #[arg(long)]
    attribute_bytes: Option<usize>,
    /// Share of traces that fail [default: 0.005].
    #[arg(long)]
    error_rate: Option<f64>,
    /// Share of traces that take 30 s [default: 0.01].
    #[arg(long)]
    slow_rate: Option<f64>,
    /// Whole traces per request.
    #[arg(long, default_value_t = 25)]
    traces_per_request: usize,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Target spans per second over all connections [default: as fast as acknowledged].
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send [default: 10s unless --spans is given].
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "spans")]
    duration: Option<Duration>,
    /// Send this many spans (rounded up to whole traces), then stop.
    #[arg(long)]
    spans: Option<u64>,
    /// Seed of the generated traces [default: from the clock; printed in the report].
    #[arg(long)]
    seed: Option<u64>,
    /// Timeout of one attempt.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Attempts per request, the first included, when the receiver throttles (429/503,
    /// UNAVAILABLE) or the connection fails.
    #[arg(long, default_value_t = 6)]
    max_attempts: u32,
    /// Afterwards, read a sample of the acknowledged traces back through the query API and
    /// check every span arrived; exit non-zero if any trace is missing or incomplete. (With
    /// sampling on, traces the server dropped on purpose count as missing.)
    #[arg(long)]
    verify: bool,
    /// Query API for --verify.
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    query: String,
    /// Traces checked by --verify.
    #[arg(long, default_value_t = 100)]
    verify_sample: usize,
    /// How long --verify waits for traces to become complete.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    verify_timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn options(args: LoadgenArgs) -> anyhow::Result<LoadOptions> {
    let mut profile = args.preset.profile();
    let shape_flags = [
        args.services,
        args.spans_per_trace,
        args.depth,
        args.fan_out,
    ];
    match &mut profile.topology {
        Topology::Synthetic(shape) => {
            let Shape {
                services,
                spans_per_trace,
                depth,
                fan_out,
            } = shape;
            for (slot, flag) in [services, spans_per_trace, depth, fan_out]
                .into_iter()
                .zip(shape_flags)
            {
                if let Some(v) = flag {
                    *slot = v;
                }
            }
        }
        Topology::Shop => {
            if shape_flags.iter().any(Option::is_some) {
                bail!(
                    "--services, --spans-per-trace, --depth and --fan-out shape synthetic \
                     traces; the {} preset has the shop's fixed call graph (use --preset synthetic)",
                    args.preset.name()
                );
            }
        }
    }
    if let Some(n) = args.attributes {
        profile.attributes = n;
    }
    if let Some(n) = args.attribute_bytes {
        profile.attribute_bytes = n;
        if args.attributes.is_none() && profile.attributes == 0 {
            bail!(
                "--attribute-bytes needs --attributes: the {} preset adds none",
                args.preset.name()
            );
        }
    }
    if let Some(r) = args.error_rate {
        profile.error_rate = r;
    }
    if let Some(r) = args.slow_rate {
        profile.slow_rate = r;
    }
    if args.max_attempts == 0 {
        bail!("--max-attempts must be at least 1");
    }
    let mut o = LoadOptions::new(args.protocol);
    if let Some(e) = args.endpoint {
        o.endpoint = e;
    }
    o.profile = profile;
    o.traces_per_batch = args.traces_per_request;
    o.connections = args.connections;
    o.rate = args.rate;
    o.stop = match (args.spans, args.duration) {
        (Some(n), _) => Stop::Spans(n),
        (None, Some(d)) => Stop::After(d),
        (None, None) => Stop::After(Duration::from_secs(10)),
    };
    if let Some(seed) = args.seed {
        o.seed = seed;
    }
    o.timeout = args.timeout;
    o.retry = RetryPolicy {
        max_attempts: args.max_attempts,
        ..RetryPolicy::default()
    };
    o.verify = args.verify.then(|| VerifyOptions {
        query_url: args.query.clone(),
        sample: args.verify_sample,
        timeout: args.verify_timeout,
    });
    o.progress = !args.quiet && !args.json;
    Ok(o)
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let json = args.json;
    let options = options(args)?;
    let acknowledges = options.protocol.acknowledges();
    let report = stitch_loadgen::run(options).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    if report.spans == 0 {
        bail!(
            "no batch was {}{}",
            if acknowledges { "acknowledged" } else { "sent" },
            report
                .first_failure
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(v) = &report.verify
        && !v.passed()
    {
        bail!(
            "verification failed: {} of {} sampled traces are not complete ({} missing, {} \
             incomplete, {} wrong)",
            v.checked - v.complete,
            v.checked,
            v.missing,
            v.incomplete,
            v.wrong
        );
    }
    Ok(())
}
