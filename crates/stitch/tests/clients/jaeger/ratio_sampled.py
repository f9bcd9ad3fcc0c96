"""Requests of one service sampled by OpenTelemetry's Python SDK with its stock
TraceIdRatioBased sampler, exported over OTLP/HTTP: the SDK records no sampling probability
on the spans (no `th` in tracestate, no Jaeger sampler tags).

    python ratio_sampled.py OTLP_URL SERVICE OPERATION RATIO REQUESTS

Starts REQUESTS root SERVER spans named OPERATION and exports the sampled ones in one request.
Prints {"ok": true, "sampled": N}.
"""

import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import SpanKind


def main():
    url, service, operation, ratio, requests = sys.argv[1:6]
    provider = TracerProvider(
        sampler=TraceIdRatioBased(float(ratio)),
        resource=Resource.create({"service.name": service}),
    )
    # One export request for everything: a queue large enough, no timed flush before ours.
    processor = BatchSpanProcessor(
        OTLPSpanExporter(endpoint=url),
        max_queue_size=100_000,
        max_export_batch_size=100_000,
        schedule_delay_millis=60_000,
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("stitch-ratio-test")
    sampled = 0
    for _ in range(int(requests)):
        with tracer.start_as_current_span(operation, kind=SpanKind.SERVER) as span:
            sampled += span.get_span_context().trace_flags.sampled
    ok = provider.force_flush()
    provider.shutdown()
    print(json.dumps({"ok": bool(ok), "sampled": sampled}))


if __name__ == "__main__":
    main()
