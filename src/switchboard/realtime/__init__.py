"""The realtime side: the hub, connections, and the WebSocket and SSE transports."""
