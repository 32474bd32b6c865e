// Liveness that does not depend on the JavaScript event loop. One thread per process (the "liveness
// thread", started on first use) waits on every registered socket with epoll and:
//  - answers ARP requests and IPv6 neighbor solicitations for the addresses an interface owns, from a
//    table JavaScript replaces (responder_*);
//  - answers membership pings addressed to this node with an ack, signed with the membership key
//    (member_*), and hands every datagram to JavaScript, which runs the gossip protocol.
// So a stalled event loop (GC, CPU starvation, a long callback) stops neither answers nor acks, while a
// dead process stops both at once (the thread dies with it). A lease bounds how long the thread vouches
// for a stalled process: JavaScript renews it (liveness_renew) every second; when it lapses (the event
// loop has not run for that long: stuck, not slow) the thread stops acking and answering, exactly as if
// the process had died, until JavaScript runs again.
//
// Thread safety, in one rule: every shared structure (the slot table, members, responders, their tables
// and counters, the lease) is read or written only with `lock` held — but for a member's sequence number and
// sends, which its own `send_lock` orders (memberSend takes only that: JavaScript alone closes sockets). JavaScript calls take it for the
// few microseconds they touch shared state; the thread takes it after epoll_wait returns and holds it
// while it handles that batch (at most BATCH frames per socket). epoll hands the thread a slot number and
// generation, never a pointer, so an event for a socket that JavaScript closed meanwhile finds its slot
// empty or reused (another generation) and is skipped: a closed object is never touched by the thread,
// and JavaScript frees it in its finalizer. Datagrams reach JavaScript through a thread-safe function
// (copied, queued without blocking; a full queue drops and counts). No JavaScript value is touched by the
// thread.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/if_packet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

napi_value throw_errno(napi_env env, const char *what, int err);                                                     // packet_socket.c
int open_packet_fd(int ifindex, int ethertype, const void *filter, size_t filter_len, int *err, const char **failed);  // packet_socket.c

#define MAX_SLOTS 4096
#define BATCH 64
#define MAX_DATAGRAM 1400
#define MAC_LENGTH 32
#define MAX_NAME 253
#define QUEUE_LIMIT 8192

enum { SLOT_FREE, SLOT_MEMBER, SLOT_ARP, SLOT_NDP };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int epoll_fd = -1;
static struct {
  uint32_t generation;
  int kind;
  void *object;
} slots[MAX_SLOTS];
static int slots_high;  // one past the highest slot ever used: the probe timers' scan stops there
// The probe timers (memberWatchProbe): the earliest one due, and an eventfd that wakes the thread when a new one
// is earlier than what its epoll_wait waits for.
static int64_t next_timer_ns = INT64_MAX;
static int wake_fd = -1;
#define WAKE_EVENT UINT64_MAX
// CLOCK_MONOTONIC ns until which the thread may vouch for this process; 0 until JavaScript renews it.
static int64_t lease_until;

static int64_t monotonic_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return floor((double)t.tv_sec * 1000 + (double)t.tv_nsec / 1e6);
}

// ---------------------------------------------------------------- objects

typedef struct {
  char name[MAX_NAME + 1];
  uint8_t name_len;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int has_mark;
  double mark_session;
  uint32_t mark_seq;
  // JavaScript's view of this peer, so that datagrams carrying no news can stay here ("quiet", below): the
  // incarnation of its record (-1: none yet) and whether it is counted up (alive or suspect). Kept across
  // memberSetPeers, like the mark.
  double known_incarnation;
  int known_up;
} peer;

typedef struct {
  // Per bound address (IPv4, IPv6): the membership socket, and beside it a socket on an ephemeral port of the
  // same address that sends the pings, with IP_RECVERR, so that an ICMP "port unreachable" tells at once that
  // a probe's target is not running (read_errors). Acks go to the address in the peer table, never to a
  // datagram's source, so the pings' port does not matter. The errors stay off the membership socket: a pending
  // one fails the socket's next send whatever its destination.
  int fds[4];
  int slot_of[4];
  int family[4];  // of each socket, so a send picks one without a getsockname per datagram
  int pings[4];   // the socket sends the pings
  int nfds;
  int closed;
  hmac_sha256_key_pads key;
  char self[MAX_NAME + 1];
  uint8_t self_len;
  double session;
  // Held from numbering a datagram until it is sent, by JavaScript's sends and the thread's acks alike, so they
  // leave in the order of their numbers. Only this member's: JavaScript's sends used to take `lock`, and with
  // hundreds of members in one process (the simulation) the thread, woken by a send to another member of the
  // same process, waited on it for each datagram (a twentieth of the CPU in futex calls and context switches).
  // Order: `lock` before `send_lock`, never the other way.
  pthread_mutex_t send_lock;
  uint32_t seq;  // the datagram sequence number of this session: JavaScript's sends and the thread's acks share it
  double incarnation;
  int ready;
  int answering;  // JavaScript says pings may be acked (it has peers, it is not leaving)
  int news;       // JavaScript has updates waiting to be piggybacked: pings are not quiet
  double max_skew_ms;
  peer *peers;  // sorted by name
  size_t npeers;
  napi_threadsafe_function deliver;
  uint64_t acks_sent;
  uint64_t ack_bytes;
  uint64_t queue_drops;
  // The probe JavaScript waits on (memberWatchProbe): its ack is noted here (and, when it carries no news, only
  // here: JavaScript reads it at its next wake-up, memberProbeAcked).
  int probe_watched;
  uint32_t probe_seq;
  char probe_target[MAX_NAME + 1];
  uint8_t probe_target_len;
  int probe_acked;
  // Unless acked by then, the thread pings the target once more at `retry`, and tells JavaScript at `timeout`
  // (so the event loop wakes for a probe only when it starts, and when it went unanswered).
  int64_t probe_retry_ns, probe_timeout_ns;
  int probe_retried, probe_reported;
  uint64_t probe_retries;
  uint64_t probe_retry_bytes;
  uint64_t quiet_datagrams;
  uint64_t quiet_bytes;
  uint64_t refutations;
  uint64_t refutation_bytes;
  uint64_t refused_probes;  // watched probes whose target's port was closed (read_errors)
} member;

typedef struct {
  uint8_t ip[16];
  uint64_t responses;
} owned_ip;

typedef struct {
  size_t n4, n6;
  owned_ip *v4, *v6;
} owned_table;

enum { MALFORMED_TRUNCATED, MALFORMED_INVALID, MALFORMED_UNSUPPORTED, MALFORMED_BAD_CHECKSUM, MALFORMED_KINDS };
static const char *malformed_names[MALFORMED_KINDS] = {"truncated", "invalid", "unsupported", "bad-checksum"};

typedef struct {
  int ifindex;
  uint8_t mac[6];
  int arp_fd, ndp_fd;
  int arp_slot, ndp_slot;
  int closed;
  owned_table owned;
  uint64_t requests[2];  // [0] ARP, [1] NDP
  uint64_t malformed[2][MALFORMED_KINDS];
  uint64_t send_errors;
} responder;

// ---------------------------------------------------------------- the thread

static int authentic(member *m, const uint8_t *buf, size_t len);
static void deliver_member_datagram(member *m, const uint8_t *buf, size_t len, int valid);
// The member whose socket the thread is reading, and whose HMAC it is checking, without the lock: a member
// being closed waits (on `released`) until the thread is done with it before its sockets close.
static member *in_use;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static void handle_arp(responder *r);
static void handle_ndp(responder *r);
static void fire_probe_timers(int64_t now);
static void read_errors(uint32_t slot, uint32_t generation);

// The socket of `m` registered in epoll slot `slot`, or -1. Called with `lock` held.
static int member_fd(const member *m, uint32_t slot) {
  for (int k = 0; k < m->nfds; k++)
    if (m->slot_of[k] == (int)slot) return m->fds[k];
  return -1;
}

// The object in `slot` if it is still the one epoll named (same generation). Called with `lock` held.
static void *slot_object(uint32_t slot, uint32_t generation, int *kind) {
  if (slot >= MAX_SLOTS || slots[slot].generation != generation) return NULL;  // closed since
  *kind = slots[slot].kind;
  return slots[slot].object;
}

static void *run_thread(void *arg) {
  (void)arg;
  // Signals belong to the main thread (libuv's handlers); this thread only waits on sockets.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  struct epoll_event events[64];
  for (;;) {
    pthread_mutex_lock(&lock);
    int64_t next = next_timer_ns;
    pthread_mutex_unlock(&lock);
    int wait_ms = -1;
    if (next != INT64_MAX) {
      int64_t left = next - monotonic_ns();
      wait_ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
    }
    int n = epoll_wait(epoll_fd, events, 64, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == WAKE_EVENT) {
        uint64_t count;
        if (read(wake_fd, &count, sizeof count) < 0) continue;  // EAGAIN: drained already
        continue;
      }
      uint32_t slot = (uint32_t)events[i].data.u64, generation = (uint32_t)(events[i].data.u64 >> 32);
      if (events[i].events & EPOLLERR) read_errors(slot, generation);
      // A membership datagram is read and its HMAC checked without the lock, which is then taken for the
      // ack and the hand-over only: with hundreds of members in one process (the simulation) the thread's
      // batch-long hold kept the event loop waiting.
      for (int frames = 0; frames < BATCH; frames++) {
        pthread_mutex_lock(&lock);
        int kind = SLOT_FREE, fd = -1;
        void *object = slot_object(slot, generation, &kind);
        member *m = NULL;
        if (kind == SLOT_MEMBER) {
          m = object;
          fd = member_fd(m, slot);
          if (fd >= 0 && !m->closed) in_use = m;
        } else if (kind == SLOT_ARP) {
          handle_arp(object);
        } else if (kind == SLOT_NDP) {
          handle_ndp(object);
        }
        pthread_mutex_unlock(&lock);
        if (in_use == NULL) break;  // ARP and NDP read their whole batch at once
        // (Only this thread sets `in_use` to a member, so reading it here without the lock is safe.)
        uint8_t buf[MAX_DATAGRAM + 1];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        int valid = n >= 0 && authentic(m, buf, (size_t)n);
        pthread_mutex_lock(&lock);
        in_use = NULL;
        pthread_cond_broadcast(&released);
        if (n >= 0 && !m->closed) deliver_member_datagram(m, buf, (size_t)n, valid);
        pthread_mutex_unlock(&lock);
        if (n < 0) break;
      }
    }
    pthread_mutex_lock(&lock);
    int64_t now = monotonic_ns();
    if (now >= next_timer_ns) fire_probe_timers(now);
    pthread_mutex_unlock(&lock);
  }
}

// Starts the thread once. Called with `lock` held. 0 or an errno.
static int ensure_thread(void) {
  if (epoll_fd >= 0) return 0;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return errno;
  int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_EVENT};
  if (wake < 0 || epoll_ctl(fd, EPOLL_CTL_ADD, wake, &ev) < 0) {
    int err = errno;
    if (wake >= 0) close(wake);
    close(fd);
    return err;
  }
  epoll_fd = fd;
  wake_fd = wake;
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&thread, &attr, run_thread, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    close(fd);
    epoll_fd = -1;
    return rc;
  }
  return 0;
}

// Registers fd with the thread under a fresh slot. Called with `lock` held. The slot, or -1 with errno.
static int add_slot(int fd, int kind, void *object) {
  int err = ensure_thread();
  if (err != 0) {
    errno = err;
    return -1;
  }
  for (int slot = 0; slot < MAX_SLOTS; slot++) {
    if (slots[slot].kind != SLOT_FREE) continue;
    slots[slot].generation += 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)slots[slot].generation << 32 | (uint32_t)slot};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) return -1;
    slots[slot].kind = kind;
    slots[slot].object = object;
    if (slot >= slots_high) slots_high = slot + 1;
    return slot;
  }
  errno = EMFILE;
  return -1;
}

// Called with `lock` held; the generation changes, so events already returned for it are skipped.
static void remove_slot(int slot, int fd) {
  if (slot < 0) return;
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
  slots[slot].kind = SLOT_FREE;
  slots[slot].object = NULL;
  slots[slot].generation += 1;
}

static int vouching(void) { return lease_until != 0 && monotonic_ns() < lease_until; }

// ---------------------------------------------------------------- membership

static void put_f64(uint8_t *p, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(bits >> (56 - 8 * i));
}

static double get_f64(const uint8_t *p) {
  uint64_t bits = 0;
  for (int i = 0; i < 8; i++) bits = bits << 8 | p[i];
  double v;
  memcpy(&v, &bits, 8);
  return v;
}

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static int constant_time_equal(const uint8_t *a, const uint8_t *b, size_t n) {
  uint8_t diff = 0;
  for (size_t i = 0; i < n; i++) diff |= a[i] ^ b[i];
  return diff == 0;
}

static int compare_name(const uint8_t *a, size_t a_len, const char *b, size_t b_len) {
  size_t n = a_len < b_len ? a_len : b_len;
  int c = memcmp(a, b, n);
  if (c != 0) return c;
  return a_len < b_len ? -1 : a_len > b_len;
}

static peer *find_peer(member *m, const uint8_t *name, size_t len) {
  size_t lo = 0, hi = m->npeers;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = compare_name(name, len, m->peers[mid].name, m->peers[mid].name_len);
    if (c == 0) return &m->peers[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

// Reads a length-prefixed name at *at; NULL if it runs past `end`.
static const uint8_t *take_name(const uint8_t *buf, size_t *at, size_t end, uint8_t *len) {
  if (*at + 1 > end) return NULL;
  *len = buf[*at];
  if (*len == 0 || *len > MAX_NAME || *at + 1 + *len > end) return NULL;
  const uint8_t *name = buf + *at + 1;
  *at += 1 + *len;
  return name;
}

// The errors an ICMP message about an earlier datagram leaves pending on a socket.
static int icmp_errno(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN || err == ENONET || err == ENOPROTOOPT ||
         err == EPROTO || err == EACCES || err == EMSGSIZE || err == EOPNOTSUPP;
}

// Sends a datagram from the membership socket of its family, or a ping from the pings' socket.
static int send_to(member *m, const struct sockaddr_storage *addr, socklen_t addr_len, const uint8_t *packet, size_t len, int ping) {
  for (int k = 0; k < m->nfds; k++) {
    if (m->family[k] != addr->ss_family || m->pings[k] != ping) continue;
    // An ICMP error about an earlier ping stays pending on the pings' socket and fails its next send without
    // sending it; so does each one read from the error queue while more wait there. That attempt took the error,
    // so the ping is sent again (a few times: read_errors may be draining the queue meanwhile).
    for (int attempt = 0;; attempt++) {
      ssize_t sent = sendto(m->fds[k], packet, len, MSG_DONTWAIT, (const struct sockaddr *)addr, addr_len);
      if (sent >= 0 || !ping || attempt == 7 || !icmp_errno(errno)) return (int)sent;
    }
  }
  errno = EAFNOSUPPORT;
  return -1;
}

// The datagram layout is wire.ts's: "BLM2" | sender | receiver | session f64 | seq u32 | sentAt f64 |
// type u8 | [probe seq u32] [target] | u16 count | updates | HMAC-SHA256.
enum { TYPE_PING = 0, TYPE_PING_REQ = 1, TYPE_ACK = 2, TYPE_NACK = 3, TYPE_GOSSIP = 6 };

typedef struct {
  const uint8_t *sender;
  uint8_t sender_len;
  double session;
  uint32_t seq;
  uint8_t type;
  uint32_t probe_seq;
  const uint8_t *target;
  uint8_t target_len;
  size_t updates_at;  // the u16 count
  peer *peer;
} header;

// What the thread makes of an authentic datagram: addressed to this node by a known peer, fresh and newer than
// anything that peer sent before (NEW; its mark moves), a replay (REPLAY), or something JavaScript judges and
// drops (OTHER: misdirected, stale, an unknown sender, unparseable).
enum { JUDGED_OTHER, JUDGED_NEW, JUDGED_REPLAY };

static int judge(member *m, const uint8_t *buf, size_t len, header *h) {
  size_t end = len - MAC_LENGTH, at = 4;
  uint8_t receiver_len;
  h->sender = take_name(buf, &at, end, &h->sender_len);
  const uint8_t *receiver = h->sender ? take_name(buf, &at, end, &receiver_len) : NULL;
  if (receiver == NULL || at + 8 + 4 + 8 + 1 > end) return JUDGED_OTHER;
  h->session = get_f64(buf + at);
  h->seq = get_u32(buf + at + 8);
  double sent_at = get_f64(buf + at + 12);
  h->type = buf[at + 20];
  at += 21;
  h->target = NULL;
  if (h->type == TYPE_PING || h->type == TYPE_PING_REQ || h->type == TYPE_ACK || h->type == TYPE_NACK) {
    if (at + 4 > end) return JUDGED_OTHER;
    h->probe_seq = get_u32(buf + at);
    at += 4;
  }
  if ((h->type == TYPE_PING || h->type == TYPE_PING_REQ) && (h->target = take_name(buf, &at, end, &h->target_len)) == NULL) return JUDGED_OTHER;
  h->updates_at = at;
  if (compare_name(receiver, receiver_len, m->self, m->self_len) != 0) return JUDGED_OTHER;
  if (!(fabs(wall_ms() - sent_at) <= m->max_skew_ms)) return JUDGED_OTHER;
  h->peer = find_peer(m, h->sender, h->sender_len);
  if (h->peer == NULL) return JUDGED_OTHER;
  peer *p = h->peer;
  if (p->has_mark && (h->session < p->mark_session || (h->session == p->mark_session && h->seq <= p->mark_seq))) return JUDGED_REPLAY;
  p->has_mark = 1;
  p->mark_session = h->session;
  p->mark_seq = h->seq;
  return JUDGED_NEW;
}

// Sends `p` a ping or an ack of probe `probe_seq`, or gossip, that carries this node's own record only (as the
// gossip core's carry it first), numbered in sequence with JavaScript's datagrams and signed. The bytes sent, or 0.
static size_t send_own(member *m, const peer *p, uint8_t type, uint32_t probe_seq) {
  uint8_t out[MAX_DATAGRAM];
  size_t w = 0;
  memcpy(out, "BLM2", 4);
  w = 4;
  out[w++] = m->self_len;
  memcpy(out + w, m->self, m->self_len);
  w += m->self_len;
  out[w++] = p->name_len;  // the receiver
  memcpy(out + w, p->name, p->name_len);
  w += p->name_len;
  size_t seq_at = w + 8;
  put_f64(out + w, m->session);
  put_f64(out + w + 12, wall_ms());
  out[w + 20] = type;
  w += 21;
  if (type != TYPE_GOSSIP) {  // gossip answers no probe
    put_u32(out + w, probe_seq);
    w += 4;
  }
  if (type == TYPE_PING) {  // the target: the receiver
    out[w++] = p->name_len;
    memcpy(out + w, p->name, p->name_len);
    w += p->name_len;
  }
  out[w++] = 0;
  out[w++] = 1;  // one update
  out[w++] = 0;  // "alive"
  out[w++] = m->self_len;
  memcpy(out + w, m->self, m->self_len);
  w += m->self_len;
  put_f64(out + w, m->incarnation);
  w += 8;
  out[w++] = m->ready ? 1 : 0;
  pthread_mutex_lock(&m->send_lock);
  put_u32(out + seq_at, ++m->seq);
  hmac_sha256(&m->key, out, w, out + w);
  int sent = send_to(m, &p->addr, p->addr_len, out, w + MAC_LENGTH, type == TYPE_PING);
  pthread_mutex_unlock(&m->send_lock);
  return sent < 0 ? 0 : w + MAC_LENGTH;
}

// A peer JavaScript counts up, at random (a few tries), or NULL. xorshift64: spreading a refutation needs no
// better randomness than the gossip core's Math.random.
static uint64_t random_state;
static const peer *random_up_peer(member *m) {
  if (m->npeers == 0) return NULL;
  if (random_state == 0) random_state = (uint64_t)monotonic_ns() | 1;
  for (int tries = 0; tries < 8; tries++) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    const peer *p = &m->peers[random_state % m->npeers];
    if (p->known_up) return p;
  }
  return NULL;
}

// Peers told of a refutation besides the datagram's sender and the accuser: enough to start its spread, which
// the core's gossip (16 sends by every member that learns it, at a thousand members) carries on from there.
#define REFUTATION_FANOUT 2

// What the updates of a NEW datagram say, read once for the refutation and for the quiet check.
typedef struct {
  int parsed;       // every update lies within the datagram
  int exact;        // ... and they end where the MAC begins
  int no_news;      // none would change JavaScript's view (see `quiet`)
  double accused;   // the highest incarnation of a suspect or dead record about this node from another member; -1: none
  const uint8_t *accuser;
  uint8_t accuser_len;
} update_scan;

static update_scan scan_updates(member *m, const header *h, const uint8_t *buf, size_t len) {
  update_scan s = {.parsed = 0, .exact = 0, .no_news = 1, .accused = -1, .accuser = NULL, .accuser_len = 0};
  size_t end = len - MAC_LENGTH, at = h->updates_at;
  if (at + 2 > end) return s;
  unsigned count = (unsigned)buf[at] << 8 | buf[at + 1];
  at += 2;
  for (unsigned i = 0; i < count; i++) {
    uint8_t name_len, from_len = 0;
    if (at + 1 > end) return s;
    uint8_t kind = buf[at];
    if (kind > 4) return s;
    at += 1;
    const uint8_t *name = take_name(buf, &at, end, &name_len);
    if (name == NULL || at + 8 > end) return s;
    double incarnation = get_f64(buf + at);
    at += 8;
    const uint8_t *from = NULL;
    if (kind == 0) {
      if (at + 1 > end) return s;
      if (buf[at] > 1) s.no_news = 0;
      at += 1;
    } else if ((from = take_name(buf, &at, end, &from_len)) == NULL || (kind >= 3 && (at += kind == 3 ? 1 : 3) > end)) {
      return s;
    }
    if (compare_name(name, name_len, m->self, m->self_len) == 0) {
      // An alive record about this node is nothing to the core either (it refutes suspicions, not records). A
      // dead record from this node itself says it left: JavaScript's to answer, as it is leaving.
      if (kind == 0) continue;
      s.no_news = 0;
      if (compare_name(from, from_len, m->self, m->self_len) != 0 && incarnation > s.accused) {
        s.accused = incarnation;
        s.accuser = from;
        s.accuser_len = from_len;
      }
      continue;
    }
    if (!s.no_news) continue;
    const peer *about = find_peer(m, name, name_len);
    // A suspicion or verdict about a member the core counts down already, at no higher incarnation, changes
    // nothing there: a death reaches each member about λ·log N times, and every copy but the first stays here.
    if (about == NULL || about->known_incarnation < 0 || !(incarnation <= about->known_incarnation) || (kind != 0 && about->known_up)) s.no_news = 0;
  }
  s.parsed = 1;
  s.exact = at == end;
  return s;
}

// Refutes, here and now, a suspect or dead record about this node in a NEW datagram (at or above its
// incarnation): the incarnation goes one above it, as the gossip core's would, and the record goes to the sender
// (in the ack when the datagram is a ping the thread will ack), the accuser and REFUTATION_FANOUT peers. The core
// refutes only when the event loop runs; a loop that stalled (GC, a starved CPU) for longer than a suspicion
// lasts (300 ms at a thousand members) made a slow member a dead one. The datagram still goes to JavaScript,
// whose core makes the same incarnation (memberSetSelf never lowers it). Called with `lock` held.
static void refute_accusation(member *m, const header *h, const update_scan *scan) {
  if (!m->answering || !vouching() || !scan->parsed || scan->accused < 0 || scan->accused < m->incarnation) return;
  m->incarnation = scan->accused + 1;
  m->refutations += 1;
  const peer *told[2 + REFUTATION_FANOUT] = {0};
  size_t n = 0;
  int acks_sender = h->type == TYPE_PING && compare_name(h->target, h->target_len, m->self, m->self_len) == 0;
  if (!acks_sender) told[n++] = h->peer;
  const peer *accused_by = find_peer(m, scan->accuser, scan->accuser_len);
  if (accused_by != NULL && accused_by != h->peer) told[n++] = accused_by;
  for (int i = 0; i < REFUTATION_FANOUT; i++) {
    const peer *p = random_up_peer(m);
    int again = p == NULL || p == h->peer;
    for (size_t k = 0; k < n && !again; k++) again = told[k] == p;
    if (!again) told[n++] = p;
  }
  for (size_t k = 0; k < n; k++) m->refutation_bytes += send_own(m, told[k], TYPE_GOSSIP, 0);
}

// Acks a ping to this node that `judge` found NEW. 1 if acked.
static int maybe_ack(member *m, const header *h) {
  if (!m->answering || !vouching() || h->type != TYPE_PING) return 0;
  if (compare_name(h->target, h->target_len, m->self, m->self_len) != 0) return 0;
  size_t sent = send_own(m, h->peer, TYPE_ACK, h->probe_seq);
  if (sent == 0) return 0;
  m->acks_sent += 1;
  m->ack_bytes += sent;
  return 1;
}

// Whether a NEW datagram would change nothing in JavaScript, so that it stays here: a ping the thread acked, the
// ack of the probe JavaScript waits on (noted for memberProbeAcked), or gossip; from a peer JavaScript counts up
// (one it counts dead is told so when it speaks: that datagram goes on); carrying only records no newer than
// JavaScript's: "alive" ones (the gossip core ignores an alive record at or below the incarnation it has), and
// suspicions or verdicts about members it counts down (it ignores those too). In a steady cluster that is nearly
// every datagram: probes and their acks carry the sender's unchanged record.
static int quiet(member *m, const header *h, const update_scan *scan, int acked, int watched_ack) {
  if (!h->peer->known_up) return 0;
  if (h->type == TYPE_PING) {
    // With news waiting, the core's own ack carries them (acks were half of start-up's dissemination).
    if (!acked || m->news) return 0;
  } else if (h->type == TYPE_ACK) {
    if (!watched_ack) return 0;
  } else if (h->type != TYPE_GOSSIP) {
    return 0;
  }
  return scan->parsed && scan->exact && scan->no_news;
}

typedef struct {
  size_t len;
  int acked;
  int authentic;
  int replayed;
  int probe_timeout;  // not a datagram: the watched probe went unanswered (1) or was refused (2): onDatagram(null, refused)
  double incarnation;  // this node's, as the thread held it then (refute_accusation)
  uint8_t bytes[];
} delivery;

// Whether a datagram carries the membership magic and a valid HMAC under the key. Checked here once for
// every datagram, so JavaScript parses what the thread vouches for instead of computing the HMAC again.
static int authentic(member *m, const uint8_t *buf, size_t len) {
  if (len < 4 + MAC_LENGTH + 1 || len > MAX_DATAGRAM || memcmp(buf, "BLM2", 4) != 0) return 0;
  uint8_t mac[32];
  hmac_sha256(&m->key, buf, len - MAC_LENGTH, mac);
  return constant_time_equal(mac, buf + len - MAC_LENGTH, MAC_LENGTH);
}

// Acks a datagram the thread read if it is a ping to this node, and hands it to JavaScript unless it is quiet.
// Called with `lock` held, on a member not closed.
static void deliver_member_datagram(member *m, const uint8_t *buf, size_t len, int valid) {
  header h = {0};
  int judged = valid ? judge(m, buf, len, &h) : JUDGED_OTHER;
  update_scan scan = {0};
  if (judged == JUDGED_NEW) {
    scan = scan_updates(m, &h, buf, len);
    refute_accusation(m, &h, &scan);
  }
  int acked = judged == JUDGED_NEW && maybe_ack(m, &h);
  // The watched probe's ack, quiet or not, ends its timers.
  int watched_ack = judged == JUDGED_NEW && h.type == TYPE_ACK && m->probe_watched && h.probe_seq == m->probe_seq &&
                    compare_name(h.sender, h.sender_len, m->probe_target, m->probe_target_len) == 0;
  if (watched_ack) m->probe_acked = 1;
  if (judged == JUDGED_NEW && quiet(m, &h, &scan, acked, watched_ack)) {
    m->quiet_datagrams += 1;
    m->quiet_bytes += len;
    return;
  }
  delivery *d = malloc(sizeof *d + len);
  if (d == NULL) {
    m->queue_drops += 1;
    return;
  }
  d->len = len;
  d->acked = acked;
  d->authentic = valid;
  d->replayed = judged == JUDGED_REPLAY;
  d->probe_timeout = 0;
  d->incarnation = m->incarnation;
  memcpy(d->bytes, buf, len);
  if (napi_call_threadsafe_function(m->deliver, d, napi_tsfn_nonblocking) != napi_ok) {
    free(d);
    m->queue_drops += 1;
  }
}

// Runs on the JavaScript thread: onDatagram(packet, acked, authentic, replayed, incarnation), or for the watched
// probe onDatagram(null, refused, false, false, incarnation).
static void call_deliver(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  delivery *d = data;
  if (env != NULL && callback != NULL) {
    napi_value argv[5], global, result;
    void *copy;
    napi_status made = d->probe_timeout ? napi_get_null(env, &argv[0]) : napi_create_buffer_copy(env, d->len, d->bytes, &copy, &argv[0]);
    if (made == napi_ok) {
      napi_get_boolean(env, d->probe_timeout ? d->probe_timeout == 2 : d->acked, &argv[1]);
      napi_get_boolean(env, d->authentic, &argv[2]);
      napi_get_boolean(env, d->replayed, &argv[3]);
      napi_create_double(env, d->incarnation, &argv[4]);
      napi_get_global(env, &global);
      napi_call_function(env, global, callback, 5, argv, &result);
    }
  }
  free(d);
}

// The watched probe's retry: the same ping once more. Called with `lock` held.
static void send_probe_retry(member *m) {
  const peer *p = find_peer(m, (const uint8_t *)m->probe_target, m->probe_target_len);
  if (p == NULL) return;
  size_t sent = send_own(m, p, TYPE_PING, m->probe_seq);
  if (sent == 0) return;
  m->probe_retries += 1;
  m->probe_retry_bytes += sent;
}

// Tells JavaScript the watched probe went unanswered, or that its target refused it. Called with `lock` held.
static void deliver_probe_timeout(member *m, int refused) {
  delivery *d = calloc(1, sizeof *d);
  if (d == NULL) {
    m->queue_drops += 1;
    return;
  }
  d->probe_timeout = refused ? 2 : 1;
  d->incarnation = m->incarnation;
  if (napi_call_threadsafe_function(m->deliver, d, napi_tsfn_nonblocking) != napi_ok) {
    free(d);
    m->queue_drops += 1;
  }
}

// Fires the probe timers that are due and finds the next one. Called with `lock` held.
static void fire_probe_timers(int64_t now) {
  int64_t next = INT64_MAX;
  for (int slot = 0; slot < slots_high; slot++) {
    if (slots[slot].kind != SLOT_MEMBER) continue;
    member *m = slots[slot].object;
    if (m->closed || !m->probe_watched || m->probe_acked) continue;
    if (!m->probe_retried) {
      if (now >= m->probe_retry_ns) {
        m->probe_retried = 1;
        if (m->answering && vouching()) send_probe_retry(m);
      } else if (m->probe_retry_ns < next) {
        next = m->probe_retry_ns;
      }
    }
    if (!m->probe_reported) {
      if (now >= m->probe_timeout_ns) {
        m->probe_reported = 1;
        deliver_probe_timeout(m, 0);
      } else if (m->probe_timeout_ns < next) {
        next = m->probe_timeout_ns;
      }
    }
  }
  next_timer_ns = next;
}

// Whether a message from the error queue (IP_RECVERR) reports an ICMP "port unreachable".
static int port_unreachable(struct msghdr *msg) {
  if (msg->msg_flags & MSG_CTRUNC) return 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) || (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))) continue;
    if (c->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err))) return 0;
    struct sock_extended_err e;
    memcpy(&e, CMSG_DATA(c), sizeof e);
    return (e.ee_origin == SO_EE_ORIGIN_ICMP || e.ee_origin == SO_EE_ORIGIN_ICMP6) && e.ee_errno == ECONNREFUSED;
  }
  return 0;
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

// The watched probe's target's host said nothing listens on its port: the speaker there is not running (killed,
// crashed), though the host is up. JavaScript is told at once, to ask the helpers now instead of at the timeout.
// Anyone on the path can forge an ICMP error, so this decides nothing alone: a target that acks the helpers (or
// this ping, late) is not suspected. Called with `lock` held.
static void note_refused(member *m, const struct sockaddr_storage *to) {
  if (!m->probe_watched || m->probe_acked || m->probe_reported) return;
  const peer *p = find_peer(m, (const uint8_t *)m->probe_target, m->probe_target_len);
  if (p == NULL || !same_address(&p->addr, to)) return;
  m->probe_retried = 1;
  m->probe_reported = 1;
  m->refused_probes += 1;
  deliver_probe_timeout(m, 1);
}

// Reads the ICMP errors queued on a member's pings' socket (IP_RECVERR), like its datagrams: without `lock` while reading.
static void read_errors(uint32_t slot, uint32_t generation) {
  for (int k = 0; k < BATCH; k++) {
    pthread_mutex_lock(&lock);
    int kind = SLOT_FREE, fd = -1;
    void *object = slot_object(slot, generation, &kind);
    member *m = kind == SLOT_MEMBER ? object : NULL;
    if (m != NULL && !m->closed) fd = member_fd(m, slot);
    if (fd >= 0) in_use = m;
    pthread_mutex_unlock(&lock);
    if (fd < 0) return;
    struct sockaddr_storage to;
    uint8_t data[64];
    union {
      char bytes[512];
      struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes};
    memset(&to, 0, sizeof to);
    ssize_t n = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    int refused = n >= 0 && port_unreachable(&msg);
    pthread_mutex_lock(&lock);
    in_use = NULL;
    pthread_cond_broadcast(&released);
    if (refused && !m->closed) note_refused(m, &to);
    pthread_mutex_unlock(&lock);
    if (n < 0) return;
  }
}

static void close_member(member *m) {
  pthread_mutex_lock(&lock);
  if (m->closed) {
    pthread_mutex_unlock(&lock);
    return;
  }
  m->closed = 1;
  for (int k = 0; k < m->nfds; k++) remove_slot(m->slot_of[k], m->fds[k]);
  // The thread may be reading one of its sockets without the lock: its fds close only after that.
  while (in_use == m) pthread_cond_wait(&released, &lock);
  for (int k = 0; k < m->nfds; k++) close(m->fds[k]);
  m->nfds = 0;
  pthread_mutex_unlock(&lock);
  // The thread calls `deliver` only with the lock held and the member registered, so it never will again.
  napi_release_threadsafe_function(m->deliver, napi_tsfn_release);
}

static void finalize_member(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  member *m = data;
  close_member(m);
  pthread_mutex_destroy(&m->send_lock);
  free(m->peers);
  free(m);
}

/* The first of a call's n arguments as the handle (an external) it must be; NULL with a TypeError thrown if not. */
static void *handle_arg(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *expected) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < n || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, expected);
    return NULL;
  }
  return data;
}

static member *member_arg(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  return handle_arg(env, info, n, argv, "expected a member handle and its arguments");
}

static int get_name(napi_env env, napi_value value, char *out, uint8_t *len) {
  size_t n;
  if (napi_get_value_string_latin1(env, value, out, MAX_NAME + 1, &n) != napi_ok || n == 0 || n > MAX_NAME) return 0;
  *len = (uint8_t)n;
  return 1;
}

// memberOpen(self, key: Buffer, session, maxSkewMs, onDatagram(packet, acked, authentic, replayed)) -> handle
static napi_value member_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "memberOpen(self, key, session, maxSkewMs, onDatagram) needs 5 arguments");
    return NULL;
  }
  member *m = calloc(1, sizeof *m);
  if (m == NULL) return throw_errno(env, "calloc", ENOMEM);
  void *key;
  size_t key_len;
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  if (!get_name(env, argv[0], m->self, &m->self_len) || !is_buffer || napi_get_value_double(env, argv[2], &m->session) != napi_ok ||
      napi_get_value_double(env, argv[3], &m->max_skew_ms) != napi_ok) {
    free(m);
    napi_throw_type_error(env, NULL, "memberOpen: self must be a node name, key a Buffer, session and maxSkewMs numbers");
    return NULL;
  }
  napi_get_buffer_info(env, argv[1], &key, &key_len);
  hmac_sha256_key(&m->key, key, key_len);
  napi_value name;
  napi_create_string_utf8(env, "bollard:membership", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[4], NULL, name, QUEUE_LIMIT, 1, NULL, NULL, NULL, call_deliver, &m->deliver) != napi_ok) {
    free(m);
    napi_throw_error(env, NULL, "memberOpen: cannot create the delivery queue");
    return NULL;
  }
  pthread_mutex_init(&m->send_lock, NULL);
  napi_value handle;
  napi_create_external(env, m, finalize_member, NULL, &handle);
  return handle;
}

static int parse_address(const char *text, int port, struct sockaddr_storage *addr, socklen_t *len) {
  memset(addr, 0, sizeof *addr);
  struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
  if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *len = sizeof *in4;
    return 1;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof *in6;
    return 1;
  }
  return 0;
}

// memberBind(handle, address, port): one more address (at most two: IPv4 and IPv6), with its membership socket
// and its pings' socket.
static napi_value member_bind(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  member *m = member_arg(env, info, 3, argv);
  if (m == NULL) return NULL;
  char text[64];
  int32_t port;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  if (napi_get_value_string_utf8(env, argv[1], text, sizeof text, NULL) != napi_ok || napi_get_value_int32(env, argv[2], &port) != napi_ok ||
      !parse_address(text, port, &addr, &addr_len)) {
    napi_throw_type_error(env, NULL, "memberBind(handle, address, port): an IP address and a port");
    return NULL;
  }
  if (m->closed || m->nfds == 4) return throw_errno(env, "memberBind", EBADF);
  int fds[2] = {-1, -1};
  const char *failed = NULL;
  int err = 0;
  for (int k = 0; k < 2 && failed == NULL; k++) {
    fds[k] = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fds[k] < 0) {
      failed = "socket(UDP)";
      err = errno;
      break;
    }
    int one = 1;
    if (addr.ss_family == AF_INET6) setsockopt(fds[k], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage at = addr;
    if (k == 1) {
      // The pings' socket: the same address, an ephemeral port, and the ICMP errors queued (read_errors).
      if (at.ss_family == AF_INET6) ((struct sockaddr_in6 *)&at)->sin6_port = 0;
      else ((struct sockaddr_in *)&at)->sin_port = 0;
      if (setsockopt(fds[k], addr.ss_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP, addr.ss_family == AF_INET6 ? IPV6_RECVERR : IP_RECVERR, &one, sizeof one) < 0) {
        failed = "setsockopt(IP_RECVERR)";
        err = errno;
        break;
      }
    }
    if (bind(fds[k], (struct sockaddr *)&at, addr_len) < 0) {
      failed = "bind(UDP)";
      err = errno;
    }
  }
  int slots[2] = {-1, -1};
  if (failed == NULL) {
    pthread_mutex_lock(&lock);
    for (int k = 0; k < 2; k++) {
      slots[k] = add_slot(fds[k], SLOT_MEMBER, m);
      if (slots[k] < 0) {
        failed = "epoll_ctl";
        err = errno;
        if (k == 1) remove_slot(slots[0], fds[0]);
        break;
      }
    }
    if (failed == NULL) {
      for (int k = 0; k < 2; k++) {
        m->fds[m->nfds] = fds[k];
        m->slot_of[m->nfds] = slots[k];
        m->family[m->nfds] = addr.ss_family;
        m->pings[m->nfds] = k == 1;
        m->nfds += 1;
      }
    }
    pthread_mutex_unlock(&lock);
  }
  if (failed != NULL) {
    for (int k = 0; k < 2; k++)
      if (fds[k] >= 0) close(fds[k]);
    return throw_errno(env, failed, err);
  }
  return NULL;
}

static int compare_peers(const void *a, const void *b) {
  const peer *x = a, *y = b;
  return compare_name((const uint8_t *)x->name, x->name_len, y->name, y->name_len);
}

// memberSetPeers(handle, names: string[], addresses: string[], port): whom pings are acked from and
// where acks go. Replay marks (and JavaScript's view, memberSetKnown) of peers that stay are kept.
static napi_value member_set_peers(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  member *m = member_arg(env, info, 4, argv);
  if (m == NULL) return NULL;
  uint32_t n, n2;
  int32_t port;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || napi_get_array_length(env, argv[2], &n2) != napi_ok || n != n2 ||
      napi_get_value_int32(env, argv[3], &port) != napi_ok) {
    napi_throw_type_error(env, NULL, "memberSetPeers(handle, names, addresses, port)");
    return NULL;
  }
  peer *peers = calloc(n == 0 ? 1 : n, sizeof *peers);
  if (peers == NULL) return throw_errno(env, "calloc", ENOMEM);
  size_t count = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value name, address;
    char text[64];
    napi_get_element(env, argv[1], i, &name);
    napi_get_element(env, argv[2], i, &address);
    peer *p = &peers[count];
    p->known_incarnation = -1;
    if (!get_name(env, name, p->name, &p->name_len) || napi_get_value_string_utf8(env, address, text, sizeof text, NULL) != napi_ok ||
        !parse_address(text, port, &p->addr, &p->addr_len))
      continue;  // JavaScript validated them; an address this cannot parse gets no native acks
    count++;
  }
  qsort(peers, count, sizeof *peers, compare_peers);
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < count; i++) {
    peer *old = find_peer(m, (const uint8_t *)peers[i].name, peers[i].name_len);
    if (old == NULL) continue;
    peers[i].known_incarnation = old->known_incarnation;
    peers[i].known_up = old->known_up;
    if (old->has_mark) {
      peers[i].has_mark = 1;
      peers[i].mark_session = old->mark_session;
      peers[i].mark_seq = old->mark_seq;
    }
  }
  peer *old = m->peers;
  m->peers = peers;
  m->npeers = count;
  pthread_mutex_unlock(&lock);
  free(old);
  return NULL;
}

// memberSetSelf(handle, incarnation, ready, answering, news): this node's record, as acks carry it, and whether
// JavaScript has news waiting to go out (then every ping goes to it, so that its ack carries them).
static napi_value member_set_self(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  member *m = member_arg(env, info, 5, argv);
  if (m == NULL) return NULL;
  double incarnation;
  bool ready, answering, news;
  if (napi_get_value_double(env, argv[1], &incarnation) != napi_ok || napi_get_value_bool(env, argv[2], &ready) != napi_ok ||
      napi_get_value_bool(env, argv[3], &answering) != napi_ok || napi_get_value_bool(env, argv[4], &news) != napi_ok) {
    napi_throw_type_error(env, NULL, "memberSetSelf(handle, incarnation, ready, answering, news)");
    return NULL;
  }
  pthread_mutex_lock(&lock);
  // The thread may be ahead: it refuted an accusation JavaScript has not read yet (and JavaScript's core, reading
  // it, makes the same number). A record that differs from the thread's at a number no higher than the thread's
  // (the core became ready meanwhile) takes the next number, so that every number stands for one record; each
  // delivery tells JavaScript the number the thread holds, and its core adopts it.
  if (incarnation > m->incarnation)
    m->incarnation = incarnation;
  else if (ready != (m->ready != 0))
    m->incarnation += 1;
  m->ready = ready;
  m->answering = answering;
  m->news = news;
  pthread_mutex_unlock(&lock);
  return NULL;
}

// memberSend(handle, packet, address, port): sends a datagram wire.ts encoded (unsigned: `encodeUnsigned`),
// after giving it the next sequence number of the session and signing it, so that JavaScript's datagrams and
// the thread's acks leave in the order of their numbers (peers refuse a number at or below one they have seen).
static napi_value member_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  member *m = member_arg(env, info, 4, argv);
  if (m == NULL) return NULL;
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  char text[64];
  int32_t port;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  if (!is_buffer || napi_get_value_string_utf8(env, argv[2], text, sizeof text, NULL) != napi_ok || napi_get_value_int32(env, argv[3], &port) != napi_ok ||
      !parse_address(text, port, &addr, &addr_len)) {
    napi_throw_type_error(env, NULL, "memberSend(handle, packet, address, port)");
    return NULL;
  }
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[1], &data, &len);
  uint8_t packet[MAX_DATAGRAM];
  size_t at = 4;
  uint8_t sender_len, receiver_len;
  if (len > MAX_DATAGRAM || len < 4 + MAC_LENGTH) return throw_errno(env, "memberSend", EMSGSIZE);
  memcpy(packet, data, len);
  size_t end = len - MAC_LENGTH;
  if (!take_name(packet, &at, end, &sender_len) || !take_name(packet, &at, end, &receiver_len) || at + 12 > end) return throw_errno(env, "memberSend", EINVAL);
  // Without `lock`: only this (JavaScript's) thread closes a member's sockets, so they stay open meanwhile.
  if (m->closed) return throw_errno(env, "memberSend", EBADF);
  pthread_mutex_lock(&m->send_lock);
  put_u32(packet + at + 8, ++m->seq);
  hmac_sha256(&m->key, packet, end, packet + end);
  int sent = send_to(m, &addr, addr_len, packet, len, at + 21 <= end && packet[at + 20] == TYPE_PING);
  int err = errno;
  pthread_mutex_unlock(&m->send_lock);
  if (sent < 0) return throw_errno(env, "sendto(UDP)", err);
  return NULL;
}

// memberSetKnown(handle, names: string[], incarnations: number[], up: boolean[]): JavaScript's view of these
// peers (the incarnation of its record, -1 for none; whether it counts them alive or suspect), for `quiet`.
static napi_value member_set_known(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  member *m = member_arg(env, info, 4, argv);
  if (m == NULL) return NULL;
  uint32_t n, n2, n3;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || napi_get_array_length(env, argv[2], &n2) != napi_ok ||
      napi_get_array_length(env, argv[3], &n3) != napi_ok || n != n2 || n != n3) {
    napi_throw_type_error(env, NULL, "memberSetKnown(handle, names, incarnations, up)");
    return NULL;
  }
  // Read from JavaScript first, applied under the lock after (as memberSetPeers does): the thread takes that lock
  // for every datagram and should not wait on N-API calls.
  struct known {
    char name[MAX_NAME + 1];
    uint8_t name_len;
    double incarnation;
    bool up;
  } *known = calloc(n == 0 ? 1 : n, sizeof *known);
  if (known == NULL) return throw_errno(env, "calloc", ENOMEM);
  size_t count = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value name, incarnation, up;
    struct known *k = &known[count];
    napi_get_element(env, argv[1], i, &name);
    napi_get_element(env, argv[2], i, &incarnation);
    napi_get_element(env, argv[3], i, &up);
    if (get_name(env, name, k->name, &k->name_len) && napi_get_value_double(env, incarnation, &k->incarnation) == napi_ok &&
        napi_get_value_bool(env, up, &k->up) == napi_ok)
      count++;
  }
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < count; i++) {
    peer *p = find_peer(m, (const uint8_t *)known[i].name, known[i].name_len);
    if (p == NULL) continue;
    p->known_incarnation = known[i].incarnation;
    p->known_up = known[i].up;
  }
  pthread_mutex_unlock(&lock);
  free(known);
  return NULL;
}

// memberWatchProbe(handle, target, seq, retryAfterMs, timeoutAfterMs): the probe JavaScript sent. Unless its ack
// comes first, the thread pings the target once more after retryAfterMs and calls onDatagram(null) after
// timeoutAfterMs; its ack is noted for memberProbeAcked.
static napi_value member_watch_probe(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  member *m = member_arg(env, info, 5, argv);
  if (m == NULL) return NULL;
  char text[MAX_NAME + 1];
  uint8_t text_len;
  uint32_t seq;
  double retry_ms, timeout_ms;
  if (!get_name(env, argv[1], text, &text_len) || napi_get_value_uint32(env, argv[2], &seq) != napi_ok ||
      napi_get_value_double(env, argv[3], &retry_ms) != napi_ok || napi_get_value_double(env, argv[4], &timeout_ms) != napi_ok ||
      !(retry_ms >= 0 && retry_ms <= 60000) || !(timeout_ms >= 0 && timeout_ms <= 60000)) {
    napi_throw_type_error(env, NULL, "memberWatchProbe(handle, target, seq, retryAfterMs, timeoutAfterMs)");
    return NULL;
  }
  int64_t now = monotonic_ns();
  pthread_mutex_lock(&lock);
  memcpy(m->probe_target, text, text_len);
  m->probe_target_len = text_len;
  m->probe_seq = seq;
  m->probe_acked = 0;
  m->probe_watched = 1;
  m->probe_retried = 0;
  m->probe_reported = 0;
  m->probe_retry_ns = now + (int64_t)(retry_ms * 1e6);
  // A millisecond late rather than early: JavaScript's clock must show the timeout passed when it is told.
  m->probe_timeout_ns = now + (int64_t)(timeout_ms * 1e6) + 1000000;
  int wake = m->probe_retry_ns < next_timer_ns;
  if (wake) next_timer_ns = m->probe_retry_ns;
  pthread_mutex_unlock(&lock);
  if (wake && wake_fd >= 0) {
    uint64_t one = 1;
    if (write(wake_fd, &one, sizeof one) < 0) {
      // EAGAIN only (the counter is full): the thread has a wake-up pending already.
    }
  }
  return NULL;
}

// memberProbeAcked(handle, seq) -> whether an ack of the watched probe `seq` came (quiet ones reach JavaScript only so).
static napi_value member_probe_acked(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  member *m = member_arg(env, info, 2, argv);
  if (m == NULL) return NULL;
  uint32_t seq;
  if (napi_get_value_uint32(env, argv[1], &seq) != napi_ok) {
    napi_throw_type_error(env, NULL, "memberProbeAcked(handle, seq)");
    return NULL;
  }
  pthread_mutex_lock(&lock);
  int acked = m->probe_watched && m->probe_seq == seq && m->probe_acked;
  pthread_mutex_unlock(&lock);
  napi_value result;
  napi_get_boolean(env, acked, &result);
  return result;
}

// memberStats(handle) -> {acksSent, ackBytes, queueDrops, quietDatagrams, quietBytes, probeRetries, probeRetryBytes,
//   refutations, refutationBytes, refusedProbes}
static napi_value member_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  member *m = member_arg(env, info, 1, argv);
  if (m == NULL) return NULL;
  pthread_mutex_lock(&lock);
  double acks = (double)m->acks_sent, ack_bytes = (double)m->ack_bytes, drops = (double)m->queue_drops;
  double quiet_datagrams = (double)m->quiet_datagrams, quiet_bytes = (double)m->quiet_bytes;
  double retries = (double)m->probe_retries, retry_bytes = (double)m->probe_retry_bytes;
  double refutations = (double)m->refutations, refutation_bytes = (double)m->refutation_bytes;
  double refused = (double)m->refused_probes;
  pthread_mutex_unlock(&lock);
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_double(env, acks, &value);
  napi_set_named_property(env, result, "acksSent", value);
  napi_create_double(env, ack_bytes, &value);
  napi_set_named_property(env, result, "ackBytes", value);
  napi_create_double(env, drops, &value);
  napi_set_named_property(env, result, "queueDrops", value);
  napi_create_double(env, quiet_datagrams, &value);
  napi_set_named_property(env, result, "quietDatagrams", value);
  napi_create_double(env, quiet_bytes, &value);
  napi_set_named_property(env, result, "quietBytes", value);
  napi_create_double(env, retries, &value);
  napi_set_named_property(env, result, "probeRetries", value);
  napi_create_double(env, retry_bytes, &value);
  napi_set_named_property(env, result, "probeRetryBytes", value);
  napi_create_double(env, refutations, &value);
  napi_set_named_property(env, result, "refutations", value);
  napi_create_double(env, refutation_bytes, &value);
  napi_set_named_property(env, result, "refutationBytes", value);
  napi_create_double(env, refused, &value);
  napi_set_named_property(env, result, "refusedProbes", value);
  return result;
}

static napi_value member_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  member *m = member_arg(env, info, 1, argv);
  if (m == NULL) return NULL;
  close_member(m);
  return NULL;
}

// ---------------------------------------------------------------- ARP and NDP

static const uint8_t BROADCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static owned_ip *find_owned(owned_ip *list, size_t n, const uint8_t *ip, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(list[i].ip, ip, len) == 0) return &list[i];
  return NULL;
}

static int send_frame(responder *r, int fd, const uint8_t *frame, size_t len) {
  if (send(fd, frame, len, MSG_DONTWAIT) < 0) {
    r->send_errors += 1;
    return 0;
  }
  return 1;
}

static void handle_arp(responder *r) {
  uint8_t f[2048];
  for (int i = 0; i < BATCH && !r->closed; i++) {
    ssize_t n = recv(r->arp_fd, f, sizeof f, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) break;
    if (n < 42) {
      r->malformed[0][MALFORMED_TRUNCATED] += 1;
      continue;
    }
    if (f[12] != 0x08 || f[13] != 0x06) continue;  // the filter passes only ARP
    if (!(f[14] == 0 && f[15] == 1 && f[16] == 0x08 && f[17] == 0 && f[18] == 6 && f[19] == 4) || f[20] != 0 || (f[21] != 1 && f[21] != 2)) {
      r->malformed[0][MALFORMED_UNSUPPORTED] += 1;
      continue;
    }
    if (f[21] != 1) continue;  // a reply: nothing to answer
    r->requests[0] += 1;
    if (memcmp(f, BROADCAST, 6) != 0 && memcmp(f, r->mac, 6) != 0) continue;
    const uint8_t *sender_mac = f + 22, *sender_ip = f + 28, *target_ip = f + 38;
    if (memcmp(sender_ip, target_ip, 4) == 0) continue;  // someone else's gratuitous ARP: an announcement
    if (!vouching()) continue;
    owned_ip *owned = find_owned(r->owned.v4, r->owned.n4, target_ip, 4);
    if (owned == NULL) continue;
    uint8_t reply[60] = {0};
    memcpy(reply, sender_mac, 6);
    memcpy(reply + 6, r->mac, 6);
    reply[12] = 0x08;
    reply[13] = 0x06;
    reply[15] = 1;
    reply[16] = 0x08;
    reply[18] = 6;
    reply[19] = 4;
    reply[21] = 2;
    memcpy(reply + 22, r->mac, 6);
    memcpy(reply + 28, target_ip, 4);
    memcpy(reply + 32, sender_mac, 6);
    memcpy(reply + 38, sender_ip, 4);
    if (send_frame(r, r->arp_fd, reply, sizeof reply)) owned->responses += 1;
  }
}

// The ICMPv6 checksum over the pseudo-header (RFC 4443 §2.3); 0 over a message whose checksum is right.
static uint16_t icmpv6_checksum(const uint8_t *src, const uint8_t *dst, const uint8_t *icmp, size_t len) {
  uint32_t sum = 0;
  for (int i = 0; i < 16; i += 2) sum += (uint32_t)(src[i] << 8 | src[i + 1]) + (uint32_t)(dst[i] << 8 | dst[i + 1]);
  sum += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff) + 58;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(icmp[i] << 8 | icmp[i + 1]);
  if (len & 1) sum += (uint32_t)icmp[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static const uint8_t UNSPECIFIED[16] = {0};

static void handle_ndp(responder *r) {
  uint8_t f[2048];
  for (int i = 0; i < BATCH && !r->closed; i++) {
    ssize_t got = recv(r->ndp_fd, f, sizeof f, MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0) break;
    size_t n = (size_t)got > sizeof f ? sizeof f : (size_t)got;
    uint64_t *bad = r->malformed[1];
    if (n < 78) {
      bad[MALFORMED_TRUNCATED] += 1;
      continue;
    }
    if (f[12] != 0x86 || f[13] != 0xdd) continue;  // the filter passes only IPv6
    if (f[14] >> 4 != 6) {
      bad[MALFORMED_INVALID] += 1;
      continue;
    }
    size_t payload = (size_t)f[18] << 8 | f[19];
    uint8_t hop_limit = f[21];
    if (f[20] != 58) {
      bad[MALFORMED_UNSUPPORTED] += 1;
      continue;
    }
    if (54 + payload > n) {
      bad[MALFORMED_TRUNCATED] += 1;
      continue;
    }
    if (payload < 24) {
      bad[MALFORMED_INVALID] += 1;
      continue;
    }
    const uint8_t *src = f + 22, *dst = f + 38, *icmp = f + 54;
    if (icmp[0] != 135 && icmp[0] != 136) {
      bad[MALFORMED_UNSUPPORTED] += 1;
      continue;
    }
    if (icmp[1] != 0 || hop_limit != 255) {
      bad[MALFORMED_INVALID] += 1;
      continue;
    }
    if (icmpv6_checksum(src, dst, icmp, payload) != 0) {
      bad[MALFORMED_BAD_CHECKSUM] += 1;
      continue;
    }
    const uint8_t *target = icmp + 8;
    if (target[0] == 0xff) {
      bad[MALFORMED_INVALID] += 1;
      continue;
    }
    const uint8_t *source_link = NULL;
    int broken = 0;
    for (size_t at = 24; at < payload;) {
      if (at + 2 > payload) {
        broken = MALFORMED_TRUNCATED + 1;
        break;
      }
      size_t option_len = (size_t)icmp[at + 1] * 8;
      if (option_len == 0) {
        broken = MALFORMED_INVALID + 1;
        break;
      }
      if (at + option_len > payload) {
        broken = MALFORMED_TRUNCATED + 1;
        break;
      }
      if (option_len == 8 && icmp[at] == 1) source_link = icmp + at + 2;
      at += option_len;
    }
    if (broken) {
      bad[broken - 1] += 1;
      continue;
    }
    int dad = memcmp(src, UNSPECIFIED, 16) == 0;
    if (icmp[0] == 136) {  // an advertisement: checked as the decoder does, never answered
      if ((icmp[4] & 0x40) && dst[0] == 0xff) bad[MALFORMED_INVALID] += 1;
      continue;
    }
    static const uint8_t solicited_prefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
    if (dad && (memcmp(dst, solicited_prefix, 13) != 0 || source_link != NULL)) {
      bad[MALFORMED_INVALID] += 1;
      continue;
    }
    r->requests[1] += 1;
    if (!vouching()) continue;
    owned_ip *owned = find_owned(r->owned.v6, r->owned.n6, target, 16);
    if (owned == NULL) continue;
    uint8_t group[16];
    memcpy(group, solicited_prefix, 13);
    memcpy(group + 13, target + 13, 3);
    const uint8_t group_mac[6] = {0x33, 0x33, 0xff, target[13], target[14], target[15]};
    int to_group = memcmp(dst, group, 16) == 0 && memcmp(f, group_mac, 6) == 0;
    int to_us = memcmp(dst, target, 16) == 0 && memcmp(f, r->mac, 6) == 0;
    if (!to_group && !to_us) continue;
    // Duplicate address detection (from ::) is answered to all nodes, unsolicited (RFC 4861 §7.2.4).
    static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
    uint8_t reply[14 + 40 + 32] = {0};
    memcpy(reply, dad ? all_nodes_mac : (source_link != NULL ? source_link : f + 6), 6);
    memcpy(reply + 6, r->mac, 6);
    reply[12] = 0x86;
    reply[13] = 0xdd;
    reply[14] = 0x60;
    reply[19] = 32;
    reply[20] = 58;
    reply[21] = 255;
    memcpy(reply + 22, target, 16);
    memcpy(reply + 38, dad ? all_nodes : src, 16);
    uint8_t *na = reply + 54;
    na[0] = 136;
    na[4] = (uint8_t)(0x20 | (dad ? 0 : 0x40));  // Override, and Solicited unless DAD
    memcpy(na + 8, target, 16);
    na[24] = 2;  // target link-layer address
    na[25] = 1;
    memcpy(na + 26, r->mac, 6);
    uint16_t sum = icmpv6_checksum(reply + 22, reply + 38, na, 32);
    na[2] = (uint8_t)(sum >> 8);
    na[3] = (uint8_t)sum;
    if (send_frame(r, r->ndp_fd, reply, sizeof reply)) owned->responses += 1;
  }
}

static void close_responder(responder *r) {
  pthread_mutex_lock(&lock);
  if (!r->closed) {
    r->closed = 1;
    remove_slot(r->arp_slot, r->arp_fd);
    remove_slot(r->ndp_slot, r->ndp_fd);
    close(r->arp_fd);
    close(r->ndp_fd);
  }
  pthread_mutex_unlock(&lock);
}

static void finalize_responder(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  responder *r = data;
  close_responder(r);
  free(r->owned.v4);
  free(r->owned.v6);
  free(r);
}

static responder *responder_arg(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  return handle_arg(env, info, n, argv, "expected a responder handle and its arguments");
}

static int buffer_of(napi_env env, napi_value value, void **data, size_t *len) {
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (!is_buffer) return 0;
  napi_get_buffer_info(env, value, data, len);
  return 1;
}

// responderOpen(ifindex, mac: Buffer(6), arpFilter: Buffer, ndpFilter: Buffer) -> handle. Answers
// nothing until responderSetOwned gives it addresses.
static napi_value responder_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ifindex;
  void *mac, *arp_filter, *ndp_filter;
  size_t mac_len, arp_len, ndp_len;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || ifindex <= 0 || !buffer_of(env, argv[1], &mac, &mac_len) || mac_len != 6 ||
      !buffer_of(env, argv[2], &arp_filter, &arp_len) || !buffer_of(env, argv[3], &ndp_filter, &ndp_len) || arp_len == 0 || arp_len % 8 != 0 ||
      ndp_len == 0 || ndp_len % 8 != 0) {
    napi_throw_type_error(env, NULL, "responderOpen(ifindex, mac (6 bytes), arpFilter, ndpFilter (struct sock_filter[]))");
    return NULL;
  }
  int err;
  const char *failed;
  int arp_fd = open_packet_fd(ifindex, 0x0806, arp_filter, arp_len, &err, &failed);
  if (arp_fd < 0) return throw_errno(env, failed, err);
  int ndp_fd = open_packet_fd(ifindex, 0x86dd, ndp_filter, ndp_len, &err, &failed);
  if (ndp_fd < 0) {
    close(arp_fd);
    return throw_errno(env, failed, err);
  }
  responder *r = calloc(1, sizeof *r);
  if (r == NULL) {
    close(arp_fd);
    close(ndp_fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  r->ifindex = ifindex;
  memcpy(r->mac, mac, 6);
  r->arp_fd = arp_fd;
  r->ndp_fd = ndp_fd;
  pthread_mutex_lock(&lock);
  r->arp_slot = add_slot(arp_fd, SLOT_ARP, r);
  err = errno;
  r->ndp_slot = r->arp_slot < 0 ? -1 : add_slot(ndp_fd, SLOT_NDP, r);
  if (r->ndp_slot < 0) err = errno;
  if (r->ndp_slot < 0) {
    remove_slot(r->arp_slot, arp_fd);
    r->closed = 1;
  }
  pthread_mutex_unlock(&lock);
  if (r->closed) {
    close(arp_fd);
    close(ndp_fd);
    free(r);
    return throw_errno(env, "epoll_ctl", err);
  }
  napi_value handle;
  napi_create_external(env, r, finalize_responder, NULL, &handle);
  return handle;
}

static owned_ip *copy_owned(const uint8_t *data, size_t count, size_t size) {
  owned_ip *list = calloc(count == 0 ? 1 : count, sizeof *list);
  if (list == NULL) return NULL;
  for (size_t i = 0; i < count; i++) memcpy(list[i].ip, data + i * size, size);
  return list;
}

// responderSetOwned(handle, ipv4: Buffer (4 bytes each), ipv6: Buffer (16 bytes each)): the addresses
// this interface answers for from now on. Built off the lock, swapped under it; answer counts of the
// addresses that stay are carried over.
static napi_value responder_set_owned(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  responder *r = responder_arg(env, info, 3, argv);
  if (r == NULL) return NULL;
  void *v4, *v6;
  size_t len4, len6;
  if (!buffer_of(env, argv[1], &v4, &len4) || !buffer_of(env, argv[2], &v6, &len6) || len4 % 4 != 0 || len6 % 16 != 0) {
    napi_throw_type_error(env, NULL, "responderSetOwned(handle, ipv4 (4 bytes each), ipv6 (16 bytes each))");
    return NULL;
  }
  owned_table next = {.n4 = len4 / 4, .n6 = len6 / 16};
  next.v4 = copy_owned(v4, next.n4, 4);
  next.v6 = copy_owned(v6, next.n6, 16);
  if (next.v4 == NULL || next.v6 == NULL) {
    free(next.v4);
    free(next.v6);
    return throw_errno(env, "calloc", ENOMEM);
  }
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < next.n4; i++) {
    owned_ip *old = find_owned(r->owned.v4, r->owned.n4, next.v4[i].ip, 4);
    if (old != NULL) next.v4[i].responses = old->responses;
  }
  for (size_t i = 0; i < next.n6; i++) {
    owned_ip *old = find_owned(r->owned.v6, r->owned.n6, next.v6[i].ip, 16);
    if (old != NULL) next.v6[i].responses = old->responses;
  }
  owned_table previous = r->owned;
  r->owned = next;
  pthread_mutex_unlock(&lock);
  free(previous.v4);
  free(previous.v6);
  return NULL;
}

// responderSend(handle, family: 4 | 6, frame): a gratuitous ARP or unsolicited NA, from JavaScript.
static napi_value responder_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  responder *r = responder_arg(env, info, 3, argv);
  if (r == NULL) return NULL;
  int32_t family;
  void *frame;
  size_t len;
  if (napi_get_value_int32(env, argv[1], &family) != napi_ok || (family != 4 && family != 6) || !buffer_of(env, argv[2], &frame, &len)) {
    napi_throw_type_error(env, NULL, "responderSend(handle, 4 | 6, frame)");
    return NULL;
  }
  pthread_mutex_lock(&lock);
  int closed = r->closed;
  ssize_t n = closed ? -1 : send(family == 4 ? r->arp_fd : r->ndp_fd, frame, len, MSG_DONTWAIT);
  int err = closed ? EBADF : errno;
  pthread_mutex_unlock(&lock);
  if (n < 0) return throw_errno(env, "send(AF_PACKET)", err);
  return NULL;
}

// responderSetMembership(handle, mac: Buffer(6), join): the NDP socket joins or leaves a multicast MAC
// (a solicited-node group of an owned IPv6 address).
static napi_value responder_set_membership(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  responder *r = responder_arg(env, info, 3, argv);
  if (r == NULL) return NULL;
  void *mac;
  size_t len;
  bool join;
  if (!buffer_of(env, argv[1], &mac, &len) || len != 6 || napi_get_value_bool(env, argv[2], &join) != napi_ok) {
    napi_throw_type_error(env, NULL, "responderSetMembership(handle, mac (6 bytes), join)");
    return NULL;
  }
  struct packet_mreq mreq = {0};
  mreq.mr_ifindex = r->ifindex;
  mreq.mr_type = PACKET_MR_MULTICAST;
  mreq.mr_alen = 6;
  memcpy(mreq.mr_address, mac, 6);
  pthread_mutex_lock(&lock);
  int rc = r->closed ? -1 : setsockopt(r->ndp_fd, SOL_PACKET, join ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mreq, sizeof mreq);
  int err = r->closed ? EBADF : errno;
  pthread_mutex_unlock(&lock);
  if (rc < 0) return throw_errno(env, join ? "setsockopt(PACKET_ADD_MEMBERSHIP)" : "setsockopt(PACKET_DROP_MEMBERSHIP)", err);
  return NULL;
}

static void set_count(napi_env env, napi_value obj, const char *key, uint64_t v) {
  napi_value value;
  napi_create_double(env, (double)v, &value);
  napi_set_named_property(env, obj, key, value);
}

// responderCounters(handle) -> {requests: [arp, ndp], sendErrors, malformed: [[family, reason, n]...],
// responses: [[ip, n]...]} (counts since open; responses per address currently owned).
static napi_value responder_counters(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  responder *r = responder_arg(env, info, 1, argv);
  if (r == NULL) return NULL;
  pthread_mutex_lock(&lock);
  uint64_t requests[2] = {r->requests[0], r->requests[1]}, send_errors = r->send_errors, malformed[2][MALFORMED_KINDS];
  memcpy(malformed, r->malformed, sizeof malformed);
  size_t n = r->owned.n4 + r->owned.n6;
  owned_ip *snapshot = calloc(n == 0 ? 1 : n, sizeof *snapshot);
  if (snapshot != NULL) {
    memcpy(snapshot, r->owned.v4, r->owned.n4 * sizeof *snapshot);
    memcpy(snapshot + r->owned.n4, r->owned.v6, r->owned.n6 * sizeof *snapshot);
  }
  size_t n4 = r->owned.n4;
  pthread_mutex_unlock(&lock);
  if (snapshot == NULL) return throw_errno(env, "calloc", ENOMEM);
  napi_value result, list, value;
  napi_create_object(env, &result);
  napi_create_array(env, &list);
  for (int i = 0; i < 2; i++) {
    napi_create_double(env, (double)requests[i], &value);
    napi_set_element(env, list, (uint32_t)i, value);
  }
  napi_set_named_property(env, result, "requests", list);
  set_count(env, result, "sendErrors", send_errors);
  napi_create_array(env, &list);
  uint32_t k = 0;
  for (int family = 0; family < 2; family++) {
    for (int kind = 0; kind < MALFORMED_KINDS; kind++) {
      if (malformed[family][kind] == 0) continue;
      napi_value entry, item;
      napi_create_array(env, &entry);
      napi_create_uint32(env, family == 0 ? 4 : 6, &item);
      napi_set_element(env, entry, 0, item);
      napi_create_string_utf8(env, malformed_names[kind], NAPI_AUTO_LENGTH, &item);
      napi_set_element(env, entry, 1, item);
      napi_create_double(env, (double)malformed[family][kind], &item);
      napi_set_element(env, entry, 2, item);
      napi_set_element(env, list, k++, entry);
    }
  }
  napi_set_named_property(env, result, "malformed", list);
  napi_create_array(env, &list);
  for (size_t i = 0; i < n; i++) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(i < n4 ? AF_INET : AF_INET6, snapshot[i].ip, text, sizeof text);
    napi_value entry, item;
    napi_create_array(env, &entry);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &item);
    napi_set_element(env, entry, 0, item);
    napi_create_double(env, (double)snapshot[i].responses, &item);
    napi_set_element(env, entry, 1, item);
    napi_set_element(env, list, (uint32_t)i, entry);
  }
  napi_set_named_property(env, result, "responses", list);
  free(snapshot);
  return result;
}

static napi_value responder_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  responder *r = responder_arg(env, info, 1, argv);
  if (r == NULL) return NULL;
  close_responder(r);
  return NULL;
}

// ---------------------------------------------------------------- the lease

// livenessRenew(ms): the thread may vouch for this process for `ms` more milliseconds (0: stop now).
static napi_value liveness_renew(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double ms;
  if (argc < 1 || napi_get_value_double(env, argv[0], &ms) != napi_ok || !(ms >= 0)) {
    napi_throw_type_error(env, NULL, "livenessRenew(ms >= 0)");
    return NULL;
  }
  int64_t until = ms == 0 ? 0 : monotonic_ns() + (int64_t)(ms * 1e6);
  pthread_mutex_lock(&lock);
  lease_until = until;
  pthread_mutex_unlock(&lock);
  return NULL;
}

// hmacSha256(key, data) -> Buffer: the thread's HMAC, for tests against node:crypto.
static napi_value hmac_for_test(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *key, *data;
  size_t key_len, len;
  if (argc < 2 || !buffer_of(env, argv[0], &key, &key_len) || !buffer_of(env, argv[1], &data, &len)) {
    napi_throw_type_error(env, NULL, "hmacSha256(key, data)");
    return NULL;
  }
  hmac_sha256_key_pads pads;
  hmac_sha256_key(&pads, key, key_len);
  uint8_t out[32];
  hmac_sha256(&pads, data, len, out);
  napi_value result;
  void *copy;
  napi_create_buffer_copy(env, 32, out, &copy, &result);
  return result;
}

void register_liveness(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"memberOpen", NULL, member_open, NULL, NULL, NULL, napi_default, NULL},
      {"memberBind", NULL, member_bind, NULL, NULL, NULL, napi_default, NULL},
      {"memberSetPeers", NULL, member_set_peers, NULL, NULL, NULL, napi_default, NULL},
      {"memberSetSelf", NULL, member_set_self, NULL, NULL, NULL, napi_default, NULL},
      {"memberSend", NULL, member_send, NULL, NULL, NULL, napi_default, NULL},
      {"memberStats", NULL, member_stats, NULL, NULL, NULL, napi_default, NULL},
      {"memberSetKnown", NULL, member_set_known, NULL, NULL, NULL, napi_default, NULL},
      {"memberWatchProbe", NULL, member_watch_probe, NULL, NULL, NULL, napi_default, NULL},
      {"memberProbeAcked", NULL, member_probe_acked, NULL, NULL, NULL, napi_default, NULL},
      {"memberClose", NULL, member_close, NULL, NULL, NULL, napi_default, NULL},
      {"responderOpen", NULL, responder_open, NULL, NULL, NULL, napi_default, NULL},
      {"responderSetOwned", NULL, responder_set_owned, NULL, NULL, NULL, napi_default, NULL},
      {"responderSend", NULL, responder_send, NULL, NULL, NULL, napi_default, NULL},
      {"responderSetMembership", NULL, responder_set_membership, NULL, NULL, NULL, napi_default, NULL},
      {"responderCounters", NULL, responder_counters, NULL, NULL, NULL, napi_default, NULL},
      {"responderClose", NULL, responder_close, NULL, NULL, NULL, napi_default, NULL},
      {"livenessRenew", NULL, liveness_renew, NULL, NULL, NULL, napi_default, NULL},
      {"hmacSha256", NULL, hmac_for_test, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
