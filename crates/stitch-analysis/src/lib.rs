//! Pure algorithms over traces: span tree, critical path, gaps, findings, text rendering
