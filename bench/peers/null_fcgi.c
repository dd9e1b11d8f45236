/* A "null" FastCGI responder: the ceiling of the nginx -> FastCGI path, a
 * peer for bench/fastcgi.
 *
 *   gcc -O2 -o null_fcgi null_fcgi.c
 *   ./null_fcgi 127.0.0.1:9000      (TCP, TCP_NODELAY on every connection)
 *   ./null_fcgi unix:/tmp/null.sock (Unix socket, mode 0666)
 *
 * One thread, one level-triggered epoll set, nonblocking sockets, backlog
 * 1024. Per connection it only walks the records (8-byte header, then
 * content + padding bytes skipped): it remembers the FCGI_KEEP_CONN flag of
 * BEGIN_REQUEST, and on the empty FCGI_STDIN record that ends request R it
 * sends a precomputed reply with R patched in -- a STDOUT record holding the
 * hello response, the empty STDOUT record, END_REQUEST{0, REQUEST_COMPLETE}
 * -- in one write. Without KEEP_CONN it closes once the reply is out. No
 * other parsing: params are never decoded, so this is what a FastCGI
 * backend costs when the application and its library cost nothing.
 *
 * NULL_SPIN=N in the environment makes it count to N (an empty loop, about
 * a nanosecond a step) before queueing each reply: a backend that spends
 * that much more CPU on every request, and otherwise behaves the same.
 *
 * NULL_CONNS=N keeps at most N connections open: at N the listening socket
 * leaves the epoll set, so further connections wait in the backlog until one
 * closes -- what libfcgi's N threads do, each holding its kept connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum { BEGIN_REQUEST = 1, END_REQUEST = 3, STDIN = 5, STDOUT = 6, KEEP_CONN = 1 };

static const char body[] =
    "Content-Type: text/plain\r\n"
    "Content-Length: 14\r\n"
    "\r\n"
    "Hello, world!\n";

static unsigned char reply[256];
static size_t reply_len;
static size_t id_at[3]; /* offsets of the three requestIdB1 bytes in reply */

struct conn {
    int open;
    unsigned char hdr[8];
    unsigned hdr_have;      /* header bytes collected, 0..8 */
    unsigned type;          /* the current record's type */
    size_t skip;            /* content + padding bytes still to pass over */
    size_t content_pos;     /* bytes of the current record's body seen */
    int keep;               /* FCGI_KEEP_CONN of the last BEGIN_REQUEST */
    int close_after;        /* close once `out` is flushed */
    int want_out;           /* EPOLLOUT is in the interest set */
    unsigned char *out;     /* unsent reply bytes (rare: only after EAGAIN) */
    size_t out_len, out_cap;
};

static struct conn *conns;
static int nconns;
static int epfd, is_tcp;
static int lfd = -1;
/* NULL_CONNS (0: no cap), the connections open, and whether the listening
 * socket is in the epoll set. */
static long max_open, open_now;
static int listening = 1;

static void put_header(unsigned char *p, unsigned type, unsigned clen, unsigned plen)
{
    p[0] = 1; p[1] = (unsigned char)type; p[2] = 0; p[3] = 1;
    p[4] = (unsigned char)(clen >> 8); p[5] = (unsigned char)clen;
    p[6] = (unsigned char)plen; p[7] = 0;
}

/* Steps of the empty loop run before each reply (NULL_SPIN). */
static long spin_steps;

static void spin(void)
{
    for (volatile long i = 0; i < spin_steps; i++) {
    }
}

static void build_reply(void)
{
    size_t clen = sizeof body - 1, plen = (8 - clen % 8) % 8, n = 0;
    id_at[0] = n + 2;
    put_header(reply, STDOUT, (unsigned)clen, (unsigned)plen);
    n += 8;
    memcpy(reply + n, body, clen);
    n += clen;
    memset(reply + n, 0, plen);
    n += plen;
    id_at[1] = n + 2;
    put_header(reply + n, STDOUT, 0, 0);
    n += 8;
    id_at[2] = n + 2;
    put_header(reply + n, END_REQUEST, 8, 0);
    n += 8;
    memset(reply + n, 0, 8); /* appStatus 0, protocolStatus REQUEST_COMPLETE */
    n += 8;
    reply_len = n;
}

static void close_conn(int fd)
{
    struct conn *c = &conns[fd];
    free(c->out);
    memset(c, 0, sizeof *c);
    close(fd); /* also leaves the epoll set */
    open_now--;
    if (!listening && open_now < max_open) {
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
        listening = epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) == 0;
    }
}

static int append_out(struct conn *c, const unsigned char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 1024;
        while (cap < c->out_len + n)
            cap *= 2;
        unsigned char *q = realloc(c->out, cap);
        if (q == NULL)
            return -1;
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* Writes what is queued; 1 = all out, 0 = wait for EPOLLOUT, -1 = dead. */
static int flush_out(int fd)
{
    struct conn *c = &conns[fd];
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t w = send(fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    if (c->want_out != (c->out_len != 0)) { /* rare: a full socket buffer */
        c->want_out = c->out_len != 0;
        struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.fd = fd };
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    return c->out_len == 0;
}

/* Walks the records in buf; queues a reply for each finished request. */
static void walk(struct conn *c, const unsigned char *buf, size_t n)
{
    size_t i = 0;
    while (i < n && !c->close_after) {
        if (c->hdr_have < 8) {
            size_t take = 8 - c->hdr_have;
            if (take > n - i)
                take = n - i;
            memcpy(c->hdr + c->hdr_have, buf + i, take);
            c->hdr_have += (unsigned)take;
            i += take;
            if (c->hdr_have < 8)
                break;
            c->type = c->hdr[1];
            size_t clen = (size_t)c->hdr[4] << 8 | c->hdr[5];
            c->skip = clen + c->hdr[6];
            c->content_pos = 0;
            if (c->type == STDIN && clen == 0) {
                reply[id_at[0]] = reply[id_at[1]] = reply[id_at[2]] = c->hdr[2];
                reply[id_at[0] + 1] = reply[id_at[1] + 1] = reply[id_at[2] + 1] = c->hdr[3];
                spin();
                if (append_out(c, reply, reply_len) != 0)
                    c->close_after = 1;
                if (!c->keep)
                    c->close_after = 1;
            }
        } else {
            size_t take = c->skip;
            if (take > n - i)
                take = n - i;
            /* BEGIN_REQUEST body: {roleB1, roleB0, flags, reserved[5]} */
            if (c->type == BEGIN_REQUEST && c->content_pos <= 2 && c->content_pos + take > 2)
                c->keep = (buf[i + 2 - c->content_pos] & KEEP_CONN) != 0;
            c->content_pos += take;
            c->skip -= take;
            i += take;
        }
        if (c->hdr_have == 8 && c->skip == 0)
            c->hdr_have = 0; /* next record */
    }
}

static void on_readable(int fd)
{
    static unsigned char buf[65536];
    struct conn *c = &conns[fd];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
            walk(c, buf, (size_t)r);
            if (c->close_after || (size_t)r < sizeof buf)
                break;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            close_conn(fd); /* EOF or error */
            return;
        }
    }
    if (c->out_len) {
        int f = flush_out(fd);
        if (f < 0 || (f == 1 && c->close_after))
            close_conn(fd);
    } else if (c->close_after) {
        close_conn(fd);
    }
}

static void on_listen(void)
{
    for (;;) {
        if (max_open && open_now >= max_open) {
            if (listening && epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL) == 0)
                listening = 0;
            return; /* an event for lfd left in this batch lands here too */
        }
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or EMFILE: retried on the next event */
        }
        if (fd >= nconns) {
            close(fd);
            continue;
        }
        if (is_tcp) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        memset(&conns[fd], 0, sizeof conns[fd]);
        conns[fd].open = 1;
        open_now++;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            close_conn(fd);
    }
}

static int listen_on(const char *addr)
{
    int fd;
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        const char *path = addr + 5;
        if (strlen(path) >= sizeof sun.sun_path) {
            fprintf(stderr, "null_fcgi: socket path too long\n");
            return -1;
        }
        strcpy(sun.sun_path, path);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || chmod(path, 0666) != 0)
            return -1;
    } else {
        const char *colon = strrchr(addr, ':');
        struct sockaddr_in sin = { .sin_family = AF_INET };
        char host[64];
        if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
            fprintf(stderr, "null_fcgi: address must be HOST:PORT or unix:PATH\n");
            return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        sin.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sin.sin_addr) != 1) {
            fprintf(stderr, "null_fcgi: bad IPv4 address %s\n", host);
            return -1;
        }
        int one = 1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
            return -1;
        is_tcp = 1;
    }
    if (listen(fd, 1024) != 0)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT|unix:PATH\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    build_reply();
    const char *steps = getenv("NULL_SPIN");
    spin_steps = steps ? atol(steps) : 0;
    const char *cap = getenv("NULL_CONNS");
    max_open = cap ? atol(cap) : 0;
    nconns = 65536;
    conns = calloc((size_t)nconns, sizeof *conns);
    lfd = listen_on(argv[1]);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || lfd < 0 || epfd < 0) {
        perror("null_fcgi");
        return 1;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    fprintf(stderr, "null_fcgi: FastCGI on %s\n", argv[1]);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("null_fcgi: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                on_listen();
                continue;
            }
            if (!conns[fd].open)
                continue; /* closed earlier in this batch */
            if (evs[i].events & EPOLLOUT) {
                int f = flush_out(fd);
                if (f < 0 || (f == 1 && conns[fd].close_after)) {
                    close_conn(fd);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(fd);
        }
    }
}
