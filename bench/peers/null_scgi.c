/* A "null" SCGI responder: the ceiling of the nginx -> SCGI path, a peer for
 * bench/run.
 *
 *   gcc -O2 -o null_scgi null_scgi.c
 *   ./null_scgi 127.0.0.1:4000      (TCP, TCP_NODELAY on every connection)
 *   ./null_scgi unix:/tmp/null.sock (Unix socket, mode 0666)
 *
 * One thread, one level-triggered epoll set, nonblocking sockets, backlog
 * 1024. Per connection it reads the netstring length, passes over the
 * header block while picking out the value of its first header
 * (CONTENT_LENGTH, as the SCGI spec requires), checks the ',' that ends the
 * netstring, passes over CONTENT_LENGTH bytes of body, then sends one
 * precomputed reply and closes (SCGI is one request per connection). No
 * other parsing: this is what an SCGI backend costs when the application
 * and its library cost nothing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

static const char reply[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 14\r\n"
    "\r\n"
    "Hello, world!\n";

enum state { LEN, HEAD, COMMA, BODY, REPLY };

#define FIRST_MAX 64 /* "CONTENT_LENGTH\0" + up to 20 digits + "\0", with room */
#define LEN_MAX 1000000 /* longest header block accepted */

struct conn {
    int open;
    enum state st;
    size_t head_len;    /* netstring length */
    size_t head_seen;   /* header bytes passed so far */
    char first[FIRST_MAX]; /* the start of the header block */
    unsigned long long body_left;
    size_t sent;        /* reply bytes written */
};

static struct conn *conns;
static int nconns;
static int epfd, is_tcp;

static void close_conn(int fd)
{
    memset(&conns[fd], 0, sizeof conns[fd]);
    close(fd); /* also leaves the epoll set */
}

/* CONTENT_LENGTH from the start of the header block; -1 when malformed. */
static long long content_length(const struct conn *c)
{
    static const char name[] = "CONTENT_LENGTH";
    size_t have = c->head_seen < FIRST_MAX ? c->head_seen : FIRST_MAX;
    if (have < sizeof name || memcmp(c->first, name, sizeof name) != 0)
        return -1; /* sizeof name includes its NUL */
    long long v = 0;
    size_t i = sizeof name;
    if (i >= have || c->first[i] == 0)
        return -1;
    for (; i < have && c->first[i] != 0; i++) {
        if (c->first[i] < '0' || c->first[i] > '9' || v > 1000000000000LL)
            return -1;
        v = v * 10 + (c->first[i] - '0');
    }
    return i < have ? v : -1;
}

/* Moves c along buf; returns -1 on a protocol error. */
static int walk(struct conn *c, const unsigned char *buf, size_t n)
{
    size_t i = 0;
    while (i < n && c->st != REPLY) {
        switch (c->st) {
        case LEN:
            if (buf[i] == ':') {
                if (c->head_len == 0)
                    return -1;
                c->st = HEAD;
            } else if (buf[i] >= '0' && buf[i] <= '9' && c->head_len <= LEN_MAX) {
                c->head_len = c->head_len * 10 + (buf[i] - '0');
            } else {
                return -1;
            }
            i++;
            break;
        case HEAD: {
            size_t take = c->head_len - c->head_seen;
            if (take > n - i)
                take = n - i;
            if (c->head_seen < FIRST_MAX) {
                size_t keep = FIRST_MAX - c->head_seen;
                memcpy(c->first + c->head_seen, buf + i, keep < take ? keep : take);
            }
            c->head_seen += take;
            i += take;
            if (c->head_seen == c->head_len)
                c->st = COMMA;
            break;
        }
        case COMMA: {
            long long cl = content_length(c);
            if (buf[i] != ',' || cl < 0)
                return -1;
            i++;
            c->body_left = (unsigned long long)cl;
            c->st = c->body_left ? BODY : REPLY;
            break;
        }
        case BODY: {
            size_t take = n - i;
            if (take > c->body_left)
                take = (size_t)c->body_left;
            c->body_left -= take;
            i += take;
            if (c->body_left == 0)
                c->st = REPLY;
            break;
        }
        case REPLY:
            break;
        }
    }
    return 0;
}

/* Sends the rest of the reply: 1 = all out, 0 = wait for EPOLLOUT, -1 = dead. */
static int send_reply(int fd)
{
    struct conn *c = &conns[fd];
    while (c->sent < sizeof reply - 1) {
        ssize_t w = send(fd, reply + c->sent, sizeof reply - 1 - c->sent, MSG_NOSIGNAL);
        if (w > 0) {
            c->sent += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };
            epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
            return 0;
        } else {
            return -1;
        }
    }
    return 1;
}

static void on_readable(int fd)
{
    static unsigned char buf[65536];
    struct conn *c = &conns[fd];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
            if (walk(c, buf, (size_t)r) != 0) {
                close_conn(fd);
                return;
            }
            if (c->st == REPLY || (size_t)r < sizeof buf)
                break;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            close_conn(fd); /* EOF or error before the request was whole */
            return;
        }
    }
    if (c->st == REPLY && send_reply(fd) != 0)
        close_conn(fd);
}

static void on_listen(int lfd)
{
    for (;;) {
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
            fprintf(stderr, "null_scgi: socket path too long\n");
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
            fprintf(stderr, "null_scgi: address must be HOST:PORT or unix:PATH\n");
            return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        sin.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sin.sin_addr) != 1) {
            fprintf(stderr, "null_scgi: bad IPv4 address %s\n", host);
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
    nconns = 65536;
    conns = calloc((size_t)nconns, sizeof *conns);
    int lfd = listen_on(argv[1]);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || lfd < 0 || epfd < 0) {
        perror("null_scgi");
        return 1;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    fprintf(stderr, "null_scgi: SCGI on %s\n", argv[1]);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("null_scgi: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                on_listen(lfd);
                continue;
            }
            if (!conns[fd].open)
                continue; /* closed earlier in this batch */
            if (conns[fd].st == REPLY) {
                if (send_reply(fd) != 0)
                    close_conn(fd);
            } else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                on_readable(fd);
            }
        }
    }
}
