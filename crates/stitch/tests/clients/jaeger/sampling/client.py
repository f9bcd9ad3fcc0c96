"""Asks Stitch's jaeger.api_v2.SamplingManager for a strategy with grpcio, through the stubs
that install.sh generates from sampling.proto, and prints what came back as one JSON line.

    client.py HOST:PORT strategy SERVICE   # GetSamplingStrategy(serviceName=SERVICE)
    client.py HOST:PORT raw HEX            # the same method, with HEX as the request bytes

On success: {"ok": true, "response": <the response in protobuf's JSON mapping, fields with
default values included>}. On a gRPC error: {"ok": false, "code": "INVALID_ARGUMENT",
"details": "..."}.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".venv", "stubs"))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import sampling_pb2  # noqa: E402
import sampling_pb2_grpc  # noqa: E402

METHOD = "/jaeger.api_v2.SamplingManager/GetSamplingStrategy"


def main():
    target, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    with grpc.insecure_channel(target) as channel:
        try:
            if mode == "strategy":
                stub = sampling_pb2_grpc.SamplingManagerStub(channel)
                request = sampling_pb2.SamplingStrategyParameters(serviceName=arg)
                response = stub.GetSamplingStrategy(request, timeout=10)
            elif mode == "raw":
                call = channel.unary_unary(
                    METHOD,
                    request_serializer=lambda b: b,
                    response_deserializer=sampling_pb2.SamplingStrategyResponse.FromString,
                )
                response = call(bytes.fromhex(arg), timeout=10)
            else:
                raise SystemExit(f"unknown mode {mode!r}")
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}))
            return
    body = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
    print(json.dumps({"ok": True, "response": body}))


if __name__ == "__main__":
    main()
