/* The load side of `consulpy bench watch`: N blocking queries on N keep-alive connections,
 * driven by one epoll loop, so the client is not what limits the figures.
 *
 *   watchclient HOST PORT MODE N WAIT PATH [WRITES]
 *
 * Every connection first reads PATH (MODE "same") or PATH<i> (MODE "keys") once to learn its
 * X-Consul-Index, then parks in PATH?index=<that>&wait=WAIT. When all are parked it prints
 * "armed" and waits for a line on stdin.
 *   same: the line starts the clock; the caller then changes what PATH shows; the client
 *         reports how long each connection took to be answered (p50/p99/max, all of them).
 *   keys: the client itself PUTs WRITES keys one after another (key i = w*7919 mod N) and
 *         times each write until its own watcher is answered; any other watcher answered
 *         counts as "spurious" (a write woke someone it should not have).
 * The result is one JSON line on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 16384

enum { CONNECTING, PROBE, PARKED, ANSWERED };

struct conn {
    int fd;
    int state;
    int len;
    unsigned long long index;
    double answered;
    char *buf;
};

static struct sockaddr_in addr;
static struct conn *conns;
static int nconn, epfd;
static const char *mode, *path, *wait_s;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void send_all(int fd, const char *data, int len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            die("write");
        }
        data += n;
        len -= n;
    }
}

static void send_get(int i, int blocking) {
    char req[512];
    char target[256];
    if (strcmp(mode, "keys") == 0)
        snprintf(target, sizeof target, "%s%d", path, i);
    else
        snprintf(target, sizeof target, "%s", path);
    int len;
    if (blocking)
        len = snprintf(req, sizeof req,
                       "GET %s?index=%llu&wait=%s HTTP/1.1\r\nHost: x\r\n\r\n", target,
                       conns[i].index, wait_s);
    else
        len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    send_all(conns[i].fd, req, len);
}

/* One whole response in buf? Returns its length (and the index) or 0. */
static int parse(struct conn *c, unsigned long long *index) {
    c->buf[c->len] = 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return 0;
    long body = 0;
    *index = 0;
    for (char *line = strstr(c->buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0) body = strtol(line + 15, NULL, 10);
        if (strncasecmp(line, "X-Consul-Index:", 15) == 0)
            *index = strtoull(line + 15, NULL, 10);
    }
    int total = (int)(end + 4 - c->buf) + (int)body;
    return c->len >= total ? total : 0;
}

static void open_conn(int i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        die("connect");
    conns[i].fd = fd;
    conns[i].state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (unsigned)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Handle readiness of connection i; returns 1 when a parked watcher got its answer. */
static int on_event(int i, unsigned events) {
    struct conn *c = &conns[i];
    if (c->state == CONNECTING) {
        if (!(events & EPOLLOUT)) return 0;
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            errno = err;
            die("connect");
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->state = PROBE;
        send_get(i, 0);
        return 0;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, BUF - 1 - c->len);
        if (n < 0) {
            if (errno == EAGAIN) break;
            die("read");
        }
        if (n == 0) {
            fprintf(stderr, "connection %d closed by the server\n", i);
            exit(2);
        }
        c->len += (int)n;
    }
    unsigned long long index;
    int total = parse(c, &index);
    if (!total) return 0;
    memmove(c->buf, c->buf + total, c->len - total);
    c->len -= total;
    if (c->state == PROBE) {
        c->index = index;
        c->state = PARKED;
        send_get(i, 1);
        return 0;
    }
    if (c->state == PARKED) {
        c->state = ANSWERED;
        c->answered = now();
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: watchclient HOST PORT MODE N WAIT PATH [WRITES]\n");
        return 1;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    mode = argv[3];
    nconn = atoi(argv[4]);
    wait_s = argv[5];
    path = argv[6];
    int writes = argc > 7 ? atoi(argv[7]) : 0;

    struct rlimit rl = {.rlim_cur = nconn + 64, .rlim_max = nconn + 64};
    struct rlimit have;
    getrlimit(RLIMIT_NOFILE, &have);
    if (have.rlim_cur < rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");

    conns = calloc(nconn, sizeof *conns);
    for (int i = 0; i < nconn; i++) conns[i].buf = malloc(BUF);
    epfd = epoll_create1(0);
    struct epoll_event evs[1024];

    /* Connect in waves (the listen backlog is finite), and park everyone. */
    int opened = 0, parked = 0;
    while (parked < nconn) {
        int inflight = opened - parked;
        while (opened < nconn && inflight < 256) {
            open_conn(opened++);
            inflight++;
        }
        int n = epoll_wait(epfd, evs, 1024, 1000);
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            int before = conns[i].state;
            on_event(i, evs[k].events);
            if (before != PARKED && conns[i].state == PARKED) parked++;
        }
    }
    printf("armed\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;

    if (strcmp(mode, "same") == 0) {
        double t0 = now();
        int answered = 0;
        while (answered < nconn) {
            int n = epoll_wait(epfd, evs, 1024, 60000);
            if (n == 0) break;
            for (int k = 0; k < n; k++) answered += on_event((int)evs[k].data.u32, evs[k].events);
        }
        double *lat = malloc(sizeof(double) * (answered ? answered : 1));
        int m = 0;
        for (int i = 0; i < nconn; i++)
            if (conns[i].state == ANSWERED) lat[m++] = (conns[i].answered - t0) * 1000;
        qsort(lat, m, sizeof *lat, cmp);
        printf("{\"watchers\": %d, \"answered\": %d, \"first_ms\": %.2f, \"p50_ms\": %.2f, "
               "\"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
               nconn, m, m ? lat[0] : -1.0, m ? lat[m / 2] : -1.0,
               m ? lat[(int)(m * 0.99)] : -1.0, m ? lat[m - 1] : -1.0);
        return m == nconn ? 0 : 3;
    }

    /* keys: one writer connection, blocking socket, one PUT at a time. */
    int wfd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(wfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect writer");
    int one = 1;
    setsockopt(wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double *lat = malloc(sizeof(double) * (writes ? writes : 1));
    int spurious = 0;
    struct conn wc = {.fd = wfd, .buf = malloc(BUF)};
    for (int w = 0; w < writes; w++) {
        int target = (int)(((long long)w * 7919) % nconn);
        if (conns[target].state != PARKED) {
            fprintf(stderr, "watcher %d answered before its write\n", target);
            return 3;
        }
        char req[512];
        char body[32];
        int blen = snprintf(body, sizeof body, "v%d", w);
        int len = snprintf(req, sizeof req,
                           "PUT %s%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path,
                           target, blen, body);
        double t0 = now();
        send_all(wfd, req, len);
        while (conns[target].state == PARKED) {
            int n = epoll_wait(epfd, evs, 1024, 10000);
            if (n == 0) {
                fprintf(stderr, "watcher %d not answered\n", target);
                return 3;
            }
            for (int k = 0; k < n; k++) {
                int i = (int)evs[k].data.u32;
                if (on_event(i, evs[k].events) && i != target) spurious++;
            }
        }
        lat[w] = (conns[target].answered - t0) * 1000;
        /* Drain the PUT's own answer before the next write. */
        unsigned long long ignored;
        wc.len = 0;
        for (;;) {
            ssize_t n = read(wfd, wc.buf + wc.len, BUF - 1 - wc.len);
            if (n <= 0) die("writer read");
            wc.len += (int)n;
            if (parse(&wc, &ignored)) break;
        }
    }
    qsort(lat, writes, sizeof *lat, cmp);
    printf("{\"watchers\": %d, \"writes\": %d, \"spurious\": %d, \"p50_ms\": %.2f, "
           "\"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
           nconn, writes, spurious, lat[writes / 2], lat[(int)(writes * 0.99)], lat[writes - 1]);
    return 0;
}
