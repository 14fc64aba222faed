"""The Tideflow server: settings -> store -> services -> gRPC + HTTP (composition root)."""
