// AF_PACKET sockets for the speaker: one socket per (interface, ethertype), a classic BPF filter
// attached before bind so no unfiltered frame is ever queued, frames delivered to JS from libuv.
// Needs CAP_NET_RAW only: no promiscuous mode, no NET_ADMIN.
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define MAX_FRAME 2048
// Frames read per poll wake-up before yielding back to the loop, so a flood cannot starve timers.
#define MAX_FRAMES_PER_WAKE 64

typedef struct {
  int fd;
  int ifindex;
  uv_poll_t poll;
  napi_env env;
  napi_ref on_frame;
  napi_async_context async_context;
  int closed;
  int poll_closed;  // libuv is done with the struct
  int finalized;    // JS is done with the struct
} packet_socket;

napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error;
  const char *name = "EUNKNOWN";
  switch (err) {
    case EPERM: name = "EPERM"; break;
    case EACCES: name = "EACCES"; break;
    case ENODEV: name = "ENODEV"; break;
    case ENXIO: name = "ENXIO"; break;
    case ENETDOWN: name = "ENETDOWN"; break;
    case EINVAL: name = "EINVAL"; break;
    case EAGAIN: name = "EAGAIN"; break;
    case ENOBUFS: name = "ENOBUFS"; break;
    case EMSGSIZE: name = "EMSGSIZE"; break;
    case EBADF: name = "EBADF"; break;
    default: break;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_value errno_value;
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", msg);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// The struct is freed once both libuv (poll closed) and JS (external finalized) let go of it.
static void on_poll_closed(uv_handle_t *handle) {
  packet_socket *s = handle->data;
  s->poll_closed = 1;
  if (s->finalized) free(s);
}

// Stops polling, closes the fd and drops the JS callback; idempotent.
static void close_socket(packet_socket *s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  napi_delete_reference(s->env, s->on_frame);
  napi_async_destroy(s->env, s->async_context);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  packet_socket *s = poll->data;
  if (s->closed || status < 0 || !(events & UV_READABLE)) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  unsigned char frame[MAX_FRAME];
  for (int i = 0; i < MAX_FRAMES_PER_WAKE && !s->closed; i++) {
    struct sockaddr_ll from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(s->fd, frame, sizeof frame, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &from_len);
    if (n < 0) break;  // EAGAIN: drained. Other errors: nothing useful to do per frame.
    size_t len = (size_t)n > sizeof frame ? sizeof frame : (size_t)n;
    napi_value argv[2], callback, global, result;
    void *data;
    if (napi_create_buffer_copy(env, len, frame, &data, &argv[0]) != napi_ok) break;
    napi_create_uint32(env, from.sll_pkttype, &argv[1]);
    napi_get_reference_value(env, s->on_frame, &callback);
    napi_get_global(env, &global);
    napi_status st = napi_make_callback(env, s->async_context, global, callback, 2, argv, &result);
    if (st == napi_pending_exception) {
      napi_value exception;
      napi_get_and_clear_last_exception(env, &exception);
      napi_fatal_exception(env, exception);
      break;
    }
  }
  napi_close_handle_scope(env, scope);
}

static void finalize_socket(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  packet_socket *s = data;
  s->finalized = 1;
  if (!s->closed)
    close_socket(s);
  else if (s->poll_closed)
    free(s);
}

// The n arguments of a call on a socket handle (the handle first) into argv; the socket, or NULL after
// throwing a TypeError saying `usage`.
static packet_socket *socket_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data;
  if (argc < n || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    throw_type(env, usage);
    return NULL;
  }
  return data;
}

// The bytes of a Buffer argument; false after throwing a TypeError saying `not_buffer`.
static bool buffer_arg(napi_env env, napi_value value, const char *not_buffer, void **data, size_t *len) {
  bool is_buffer;
  napi_is_buffer(env, value, &is_buffer);
  if (!is_buffer) {
    throw_type(env, not_buffer);
    return false;
  }
  napi_get_buffer_info(env, value, data, len);
  return true;
}

// An AF_PACKET socket on one interface for one ethertype, non-blocking, with `filter` attached before
// bind (protocol 0 at creation: it receives nothing until bind, and bind happens after the filter is in)
// and its own outgoing frames ignored. -1 with *err and *failed (the call) set on failure.
// Shared with native/liveness.c, whose thread answers on such sockets.
int open_packet_fd(int ifindex, int ethertype, const void *filter, size_t filter_len, int *err, const char **failed) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    *failed = "socket(AF_PACKET)";
    return -1;
  }
  struct sock_fprog prog = {.len = (unsigned short)(filter_len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)filter};
  int one = 1;
  struct sockaddr_ll addr = {0};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons((uint16_t)ethertype);
  addr.sll_ifindex = ifindex;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) {
    *failed = "setsockopt(SO_ATTACH_FILTER)";
  } else if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
    *failed = "setsockopt(PACKET_IGNORE_OUTGOING)";
  } else if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    *failed = "bind(AF_PACKET)";
  } else {
    return fd;
  }
  *err = errno;
  close(fd);
  return -1;
}

// open(ifindex, ethertype, filter: Buffer of struct sock_filter, onFrame(frame, packetType)) -> handle
static napi_value packet_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) return throw_type(env, "open(ifindex, ethertype, filter, onFrame) needs 4 arguments");
  int32_t ifindex, ethertype;
  if (napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || ifindex <= 0) return throw_type(env, "ifindex must be a positive integer");
  if (napi_get_value_int32(env, argv[1], &ethertype) != napi_ok || ethertype <= 0 || ethertype > 0xffff) return throw_type(env, "ethertype must be 1..65535");
  void *filter_data;
  size_t filter_len;
  if (!buffer_arg(env, argv[2], "filter must be a Buffer", &filter_data, &filter_len)) return NULL;
  if (filter_len == 0 || filter_len % sizeof(struct sock_filter) != 0 || filter_len / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return throw_type(env, "filter must hold 1..4096 struct sock_filter (8 bytes each)");
  napi_valuetype cb_type;
  napi_typeof(env, argv[3], &cb_type);
  if (cb_type != napi_function) return throw_type(env, "onFrame must be a function");

  int err;
  const char *failed;
  int fd = open_packet_fd(ifindex, ethertype, filter_data, filter_len, &err, &failed);
  if (fd < 0) return throw_errno(env, failed, err);

  packet_socket *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->ifindex = ifindex;
  s->env = env;
  napi_create_reference(env, argv[3], 1, &s->on_frame);
  napi_value resource_name;
  napi_create_string_utf8(env, "bollard:packet-socket", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async_context);

  struct uv_loop_s *loop;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_poll_init(loop, &s->poll, fd);
  if (rc == 0) {
    s->poll.data = s;
    rc = uv_poll_start(&s->poll, UV_READABLE, on_readable);
  }
  if (rc != 0) {
    napi_delete_reference(env, s->on_frame);
    napi_async_destroy(env, s->async_context);
    close(fd);
    free(s);
    napi_throw_error(env, "EUV", uv_strerror(rc));
    return NULL;
  }
  napi_value handle;
  napi_create_external(env, s, finalize_socket, NULL, &handle);
  return handle;
}

// send(handle, frame: Buffer) -> bytes sent
static napi_value packet_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  packet_socket *s = socket_call(env, info, 2, argv, "send(handle, frame) needs a socket handle");
  if (s == NULL) return NULL;
  if (s->closed) return throw_errno(env, "send", EBADF);
  void *data;
  size_t len;
  if (!buffer_arg(env, argv[1], "frame must be a Buffer", &data, &len)) return NULL;
  ssize_t n = send(s->fd, data, len, MSG_DONTWAIT);
  if (n < 0) return throw_errno(env, "send(AF_PACKET)", errno);
  napi_value result;
  napi_create_int64(env, n, &result);
  return result;
}

// setMembership(handle, mac: Buffer(6), join: boolean): (stop) receiving frames sent to this
// multicast MAC, e.g. the solicited-node group of an IPv6 address the speaker answers for.
static napi_value packet_set_membership(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  packet_socket *s = socket_call(env, info, 3, argv, "setMembership(handle, mac, join) needs a socket handle");
  if (s == NULL) return NULL;
  if (s->closed) return throw_errno(env, "setMembership", EBADF);
  void *mac;
  size_t len;
  bool join;
  if (!buffer_arg(env, argv[1], "mac must be a Buffer", &mac, &len)) return NULL;
  if (len != 6) return throw_type(env, "mac must be 6 bytes");
  if (napi_get_value_bool(env, argv[2], &join) != napi_ok) return throw_type(env, "join must be a boolean");
  struct packet_mreq mreq = {0};
  mreq.mr_ifindex = s->ifindex;
  mreq.mr_type = PACKET_MR_MULTICAST;
  mreq.mr_alen = 6;
  memcpy(mreq.mr_address, mac, 6);
  int option = join ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP;
  if (setsockopt(s->fd, SOL_PACKET, option, &mreq, sizeof mreq) < 0)
    return throw_errno(env, join ? "setsockopt(PACKET_ADD_MEMBERSHIP)" : "setsockopt(PACKET_DROP_MEMBERSHIP)", errno);
  return NULL;
}

static napi_value packet_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  packet_socket *s = socket_call(env, info, 1, argv, "close(handle) needs a socket handle");
  if (s == NULL) return NULL;
  close_socket(s);
  return NULL;
}

// ref/unref(handle): whether an open socket keeps the event loop alive.
static napi_value packet_set_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  packet_socket *s = socket_call(env, info, 2, argv, "setRef(handle, ref) needs a socket handle");
  if (s == NULL) return NULL;
  bool ref;
  napi_get_value_bool(env, argv[1], &ref);
  if (s->closed) return NULL;
  if (ref)
    uv_ref((uv_handle_t *)&s->poll);
  else
    uv_unref((uv_handle_t *)&s->poll);
  return NULL;
}

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value value;
  napi_create_double(env, v, &value);
  napi_set_named_property(env, obj, key, value);
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *s, size_t len) {
  napi_value value;
  napi_create_string_utf8(env, s, len, &value);
  napi_set_named_property(env, obj, key, value);
}

// listInterfaces() -> [{index, name, flags, type, mac, masterIndex, kind}] from one RTM_GETLINK dump.
// Netlink reads need no capability, and unlike sysfs they always describe this process's netns.
static napi_value list_interfaces(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", errno);
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
  } req = {0};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "send(RTM_GETLINK)", err);
  }
  napi_value list;
  napi_create_array(env, &list);
  uint32_t count = 0;
  static char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return throw_errno(env, "recv(RTM_GETLINK)", err);
    }
    int done = 0;
    for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (nh->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(nh);
        close(fd);
        return throw_errno(env, "RTM_GETLINK", -e->error);
      }
      if (nh->nlmsg_type != RTM_NEWLINK) continue;
      struct ifinfomsg *ifi = NLMSG_DATA(nh);
      napi_value obj;
      napi_create_object(env, &obj);
      set_number(env, obj, "index", ifi->ifi_index);
      set_number(env, obj, "flags", ifi->ifi_flags);
      set_number(env, obj, "type", ifi->ifi_type);
      set_number(env, obj, "masterIndex", 0);
      int attr_len = IFLA_PAYLOAD(nh);
      for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
        switch (a->rta_type) {
          case IFLA_IFNAME:
            set_string(env, obj, "name", RTA_DATA(a), strnlen(RTA_DATA(a), RTA_PAYLOAD(a)));
            break;
          case IFLA_ADDRESS: {
            napi_value mac;
            void *dst;
            napi_create_buffer_copy(env, RTA_PAYLOAD(a), RTA_DATA(a), &dst, &mac);
            napi_set_named_property(env, obj, "mac", mac);
            break;
          }
          case IFLA_MASTER:
            set_number(env, obj, "masterIndex", *(uint32_t *)RTA_DATA(a));
            break;
          case IFLA_LINKINFO: {
            int li_len = RTA_PAYLOAD(a);
            for (struct rtattr *li = RTA_DATA(a); RTA_OK(li, li_len); li = RTA_NEXT(li, li_len)) {
              if (li->rta_type == IFLA_INFO_KIND)
                set_string(env, obj, "kind", RTA_DATA(li), strnlen(RTA_DATA(li), RTA_PAYLOAD(li)));
            }
            break;
          }
          default:
            break;
        }
      }
      napi_set_element(env, list, count++, obj);
    }
    if (done) break;
  }
  close(fd);
  return list;
}

void register_tcp_socket(napi_env env, napi_value exports);  // native/tcp_socket.c
void register_liveness(napi_env env, napi_value exports);    // native/liveness.c
void register_malloc_trim(napi_env env, napi_value exports); // native/malloc_trim.c

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, packet_open, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, packet_send, NULL, NULL, NULL, napi_default, NULL},
      {"setMembership", NULL, packet_set_membership, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, packet_close, NULL, NULL, NULL, napi_default, NULL},
      {"setRef", NULL, packet_set_ref, NULL, NULL, NULL, napi_default, NULL},
      {"listInterfaces", NULL, list_interfaces, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  register_tcp_socket(env, exports);
  register_liveness(env, exports);
  register_malloc_trim(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
