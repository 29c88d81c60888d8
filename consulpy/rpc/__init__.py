"""msgpack RPC between agents and servers, on the server port (first byte 0x00; Raft is 0x01)."""
