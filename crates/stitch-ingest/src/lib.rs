//! Network receivers (OTLP gRPC and HTTP): limits, bounded decompression, backpressure
