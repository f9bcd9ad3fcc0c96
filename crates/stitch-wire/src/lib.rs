//! I/O-free codecs between wire formats (OTLP protobuf and JSON) and Stitch's model
