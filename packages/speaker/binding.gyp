{
  "targets": [
    {
      "target_name": "packet_socket",
      "sources": ["native/packet_socket.c", "native/tcp_socket.c", "native/liveness.c", "native/sha256.c", "native/malloc_trim.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2", "-pthread"],
      "libraries": ["-lpthread", "-lm"]
    }
  ]
}
