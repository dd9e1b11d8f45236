/* The classic libfcgi "Hello, world!" responder: a peer for bench/fastcgi.
 *
 *   gcc -O2 -o hello_libfcgi hello_libfcgi.c -lfcgi -lpthread
 *   ./hello_libfcgi 127.0.0.1:9000 [THREADS]     (TCP; ":9000" = all interfaces)
 *   ./hello_libfcgi /tmp/hello.sock [THREADS]    (Unix socket)
 *
 * One process. THREADS (default 1) threads each run their own
 * FCGX_Accept_r loop on the shared listening socket, as libfcgi's
 * examples/threaded.c does; a thread serves one connection at a time, and
 * with FCGI_KEEP_CONN it stays on that connection until the web server
 * closes it. Backlog 1024. */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char reply[] =
    "Content-Type: text/plain\r\n"
    "Content-Length: 14\r\n"
    "\r\n"
    "Hello, world!\n";

static int listen_fd;

/* libfcgi installs a SIGTERM handler that only stops at the next accept;
 * a handler of our own first (libfcgi leaves non-default ones alone) makes
 * SIGTERM stop the benchmark peer at once. */
static void on_term(int signo)
{
    (void)signo;
    _exit(0);
}

static void *serve(void *unused)
{
    FCGX_Request req;
    (void)unused;
    if (FCGX_InitRequest(&req, listen_fd, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&req) >= 0) {
        FCGX_PutStr(reply, (int)sizeof reply - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (argc < 2 || threads < 1) {
        fprintf(stderr, "usage: %s PATH|[HOST]:PORT [THREADS]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a web server that went away is not fatal */
    signal(SIGTERM, on_term);
    if (FCGX_Init() != 0) {
        fprintf(stderr, "hello_libfcgi: FCGX_Init failed\n");
        return 1;
    }
    umask(0); /* a Unix socket any user (nginx's workers) may connect to */
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) {
        fprintf(stderr, "hello_libfcgi: cannot listen on %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "hello_libfcgi: FastCGI on %s, %d thread(s)\n", argv[1], threads);

    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (tids == NULL)
        return 1;
    for (int i = 1; i < threads; i++)
        if (pthread_create(&tids[i], NULL, serve, NULL) != 0) {
            fprintf(stderr, "hello_libfcgi: pthread_create failed\n");
            return 1;
        }
    serve(NULL);
    for (int i = 1; i < threads; i++)
        pthread_join(tids[i], NULL);
    return 0;
}
