"""gRPC: protobuf API, the domain <-> protobuf converter, servicers, the error <-> status table."""
