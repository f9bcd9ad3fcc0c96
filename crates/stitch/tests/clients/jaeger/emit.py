"""Emits Stitch's known trace with OpenTelemetry's Python SDK and one of its exporters.

    python emit.py agent HOST:PORT TRACE_ID T0_NS   Jaeger Thrift exporter, agent mode (compact UDP)
    python emit.py collector URL TRACE_ID T0_NS     Jaeger Thrift exporter, collector mode (HTTP)
    python emit.py grpc HOST:PORT TRACE_ID T0_NS    Jaeger proto-grpc exporter (PostSpans)
    python emit.py otlp URL TRACE_ID T0_NS          OTLP/HTTP protobuf exporter

Every mode exports the same spans in one call, with the trace id given (32 hex digits), fixed
span ids and times from T0_NS (Unix nanoseconds, a whole microsecond). Prints {"ok": true}
when the export succeeded.
"""

import json
import sys
import warnings

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

ROOT, CHILD, INTERNAL, PRODUCER = 0x00F067AA0BA902B7, 0x53995C3F42CD8AD8, 0xB9C7C989F97918E1, 0xE457B5A2E4D86BD1


class FixedIds(IdGenerator):
    def __init__(self, trace_id):
        self.trace_id = trace_id
        self.span_ids = iter([ROOT, CHILD, INTERNAL, PRODUCER])

    def generate_span_id(self):
        return next(self.span_ids)

    def generate_trace_id(self):
        return self.trace_id


def spans(trace_id, t0):
    """The known trace, finished, as the SDK hands it to exporters."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "jaeger-py-e2e",
                "deployment.environment": "e2e",
                "host.cpu.count": 8,
            }
        ),
        id_generator=FixedIds(trace_id),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("stitch.e2e", "1.2.3")
    us = lambda n: t0 + n * 1_000  # noqa: E731
    root = tracer.start_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        start_time=us(0),
        attributes={
            "http.request.method": "POST",
            "http.response.status_code": 500,
            "order.total": 299.97,
            "customer.premium": True,
        },
    )
    root.add_event(
        "inventory_check",
        {"warehouse": "us-east", "items": 3},
        timestamp=us(1_500),
    )
    root.set_status(Status(StatusCode.ERROR, "payment declined"))
    ctx = trace.set_span_in_context(root)
    linked = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C, 0x00000000000004D2, True, TraceFlags(1)
    )
    child = tracer.start_span(
        "charge card",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=us(10_000),
        attributes={"peer.service": "payments"},
        links=[Link(linked, {"link.reason": "retry"})],
    )
    child.set_status(Status(StatusCode.OK))
    internal = tracer.start_span(
        "serialize", context=trace.set_span_in_context(child), start_time=us(11_000)
    )
    internal.end(end_time=us(12_000))
    child.end(end_time=us(200_250))
    producer = tracer.start_span(
        "publish order.events", context=ctx, kind=SpanKind.PRODUCER, start_time=us(201_000)
    )
    producer.end(end_time=us(206_000))
    root.end(end_time=us(250_000))
    return memory.get_finished_spans()


def main():
    # The Jaeger exporters announce their deprecation; the tests know.
    warnings.simplefilter("ignore", DeprecationWarning)
    mode, target, trace_hex, t0 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    finished = spans(int(trace_hex, 16), t0)
    if mode == "agent":
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter

        host, port = target.rsplit(":", 1)
        exporter = JaegerExporter(agent_host_name=host, agent_port=int(port))
    elif mode == "collector":
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter

        exporter = JaegerExporter(collector_endpoint=target)
    elif mode == "grpc":
        from opentelemetry.exporter.jaeger.proto.grpc import JaegerExporter

        exporter = JaegerExporter(collector_endpoint=target, insecure=True)
    elif mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=target)
    else:
        sys.exit(f"unknown mode {mode!r}")
    result = exporter.export(finished)
    exporter.shutdown()
    print(json.dumps({"ok": result == SpanExportResult.SUCCESS}))
    sys.exit(0 if result == SpanExportResult.SUCCESS else 1)


if __name__ == "__main__":
    main()
