//! HTTP query APIs (native and Jaeger-compatible)
