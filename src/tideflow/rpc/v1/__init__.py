"""Generated code of the tideflow.v1 protobuf API (do not edit; run scripts/gen-protos)."""
