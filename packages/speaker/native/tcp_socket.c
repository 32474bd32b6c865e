// TCP sockets with the options Node cannot set, for BGP sessions: TCP_MD5SIG (RFC 2385, the BGPPeer password)
// and the IP TTL / IPv6 hop limit (eBGP multi-hop). Node then adopts the descriptor (new net.Socket({fd})) and
// connects it, or the options are set on a listening socket Node already has.
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static napi_value tcp_throw(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, err == EPERM ? "EPERM" : err == EINVAL ? "EINVAL" : err == ENOENT ? "ENOENT" : "EUNKNOWN", message);
  return NULL;
}

// Sets (key non-empty) or deletes (key empty) the MD5 key for one peer address on a TCP socket.
static int set_md5(int fd, const char *peer, const void *key, size_t key_length) {
  struct tcp_md5sig sig;
  memset(&sig, 0, sizeof sig);
  if (key_length > TCP_MD5SIG_MAXKEYLEN) return EINVAL;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&sig.tcpm_addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sig.tcpm_addr;
  if (inet_pton(AF_INET, peer, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, peer, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    return EINVAL;
  }
  sig.tcpm_keylen = (uint16_t)key_length;
  memcpy(sig.tcpm_key, key, key_length);
  return setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) == 0 ? 0 : errno;
}

static int get_string(napi_env env, napi_value value, char *out, size_t size) {
  size_t length = 0;
  return napi_get_value_string_utf8(env, value, out, size, &length) == napi_ok && length < size - 1;
}

// tcpSocket(family 4|6, md5Peer: string | null, md5Key: Buffer | null, ttl: number) → fd, non-blocking,
// close-on-exec, unconnected. ttl 0 keeps the system default.
static napi_value tcp_socket(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "tcpSocket(family, md5Peer, md5Key, ttl) needs 4 arguments");
    return NULL;
  }
  int32_t family = 0, ttl = 0;
  napi_get_value_int32(env, argv[0], &family);
  napi_get_value_int32(env, argv[3], &ttl);
  if ((family != 4 && family != 6) || ttl < 0 || ttl > 255) {
    napi_throw_type_error(env, NULL, "tcpSocket: family is 4 or 6, ttl 0..255");
    return NULL;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return tcp_throw(env, "socket", errno);
  napi_valuetype peer_type;
  napi_typeof(env, argv[1], &peer_type);
  if (peer_type == napi_string) {
    char peer[64];
    void *key = NULL;
    size_t key_length = 0;
    if (!get_string(env, argv[1], peer, sizeof peer) || napi_get_buffer_info(env, argv[2], &key, &key_length) != napi_ok) {
      close(fd);
      napi_throw_type_error(env, NULL, "tcpSocket: md5Peer is an address and md5Key a Buffer");
      return NULL;
    }
    int err = set_md5(fd, peer, key, key_length);
    if (err != 0) {
      close(fd);
      return tcp_throw(env, "setsockopt(TCP_MD5SIG)", err);
    }
  }
  if (ttl > 0) {
    int rc = family == 4 ? setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) : setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
    if (rc != 0) {
      int err = errno;
      close(fd);
      return tcp_throw(env, "setsockopt(TTL)", err);
    }
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

// setTcpMd5(fd, peer, key): adds (or with an empty key removes) a peer's key on an existing socket, such as
// a listening one, so the peer's connections are accepted only with that key.
static napi_value set_tcp_md5(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  char peer[64];
  void *key = NULL;
  size_t key_length = 0;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || !get_string(env, argv[1], peer, sizeof peer) ||
      napi_get_buffer_info(env, argv[2], &key, &key_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "setTcpMd5(fd, peer, key: Buffer)");
    return NULL;
  }
  int err = set_md5(fd, peer, key, key_length);
  if (err != 0) return tcp_throw(env, "setsockopt(TCP_MD5SIG)", err);
  return NULL;
}

void register_tcp_socket(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tcpSocket", NULL, tcp_socket, NULL, NULL, NULL, napi_default, NULL},
      {"setTcpMd5", NULL, set_tcp_md5, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
