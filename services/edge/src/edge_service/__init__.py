"""The edge: HTTPS in front of the gRPC services, driven entirely by the contracts."""
