/* ctl_socket.c — the control socket's connections (ctl.h): the listening
 * sockets (root's, 0600, and the optional read-only one, 0666), clients
 * reading one JSON request per line and the replies they have not read yet.
 * What a request does is ctl.c's (ctl_handle). */
#include "ctl.h"
#include "ctl_int.h"

#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- connections -------------------------------------------------------- */

static void client_close(struct client *cl)
{
    struct ctl *c = cl->ctl;
    if (c->held == cl)
        c->held = NULL;     /* its upgrade goes on; nobody to tell */
    for (struct ctl_wait *w = c->waits; w; w = w->next)
        if (w->cl == cl)
            w->cl = NULL;   /* the catalog's request goes on; its answer is dropped */
    for (struct client **pp = &c->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    evloop_del_fd(c->el, cl->fd);
    close(cl->fd);
    free(cl->out);
    free(cl);
}

/* Returns -1 when the client was dropped. */
static int client_flush(struct client *cl)
{
    while (cl->outoff < cl->outlen) {
        ssize_t n = write(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            evloop_mod_fd(cl->ctl->el, cl->fd, EV_READ | EV_WRITE);
            return 0;
        }
        if (n < 0) {
            client_close(cl);
            return -1;
        }
        cl->outoff += (size_t)n;
    }
    cl->outoff = cl->outlen = 0;
    evloop_mod_fd(cl->ctl->el, cl->fd, EV_READ);
    return 0;
}

int ctl_client_reply(struct client *cl, char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (!s || cl->outlen - cl->outoff + len + 1 > CTL_OUT_MAX) {
        mx_warn("control socket: dropping a client that does not read its replies");
        free(s);
        client_close(cl);
        return -1;
    }
    if (cl->outoff) {
        memmove(cl->out, cl->out + cl->outoff, cl->outlen - cl->outoff);
        cl->outlen -= cl->outoff;
        cl->outoff = 0;
    }
    if (cl->outlen + len + 1 > cl->outcap) {
        size_t cap = (cl->outlen + len + 1) * 2;
        char *n = realloc(cl->out, cap);
        if (!n) {
            free(s);
            client_close(cl);
            return -1;
        }
        cl->out = n;
        cl->outcap = cap;
    }
    memcpy(cl->out + cl->outlen, s, len);
    cl->out[cl->outlen + len] = '\n';
    cl->outlen += len + 1;
    free(s);
    return client_flush(cl);
}

static char *too_long(void)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "{\"error\":\"request line too long (max %d bytes)\"}", CTL_LINE_MAX - 1);
    return strdup(msg);
}

static void on_client(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct client *cl = arg;
    if ((events & EV_WRITE) && client_flush(cl) < 0)
        return;
    if (!(events & EV_READ))
        return;
    ssize_t n = read(fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_close(cl);
        return;
    }
    cl->inlen += (size_t)n;
    for (;;) {
        char *nl = memchr(cl->in, '\n', cl->inlen);
        if (!nl) {
            if (cl->inlen == sizeof(cl->in)) {
                /* No newline in a full buffer: answer once, then skip to the next line. */
                if (!cl->skipping && ctl_client_reply(cl, too_long()) < 0)
                    return;
                cl->skipping = true;
                cl->inlen = 0;
            }
            return;
        }
        size_t len = (size_t)(nl - cl->in);
        if (cl->skipping) {
            cl->skipping = false;
        } else if (len > 0 && !(len == 1 && cl->in[0] == '\r')) {
            struct ctl *c = cl->ctl;
            c->cur = cl;
            char *s = ctl_handle(c, cl->in, len);
            c->cur = NULL;
            bool later = c->deferred || (!s && c->held == cl);
            c->deferred = false;
            if (!later && ctl_client_reply(cl, s) < 0)
                return;
        }
        memmove(cl->in, nl + 1, cl->inlen - len - 1);
        cl->inlen -= len + 1;
    }
}

static void on_accept(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct listener *l = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        if (errno != EAGAIN && errno != EINTR)
            mx_warn("control socket %s: accept: %s", l->path, strerror(errno));
        return;
    }
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl || evloop_add_fd(el, cfd, EV_READ, on_client, cl) < 0) {
        mx_warn("control socket %s: cannot take a client: %s", l->path, strerror(errno));
        free(cl);
        close(cfd);
        return;
    }
    struct ctl *c = l->c;
    cl->ctl = c;
    cl->fd = cfd;
    cl->ro = l->ro;
    cl->next = c->clients;
    c->clients = cl;
}

static int mkdir_parents(const char *path, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "control socket %s: cannot create %s: %s", path, dir, strerror(errno));
                return -1;
            }
            *p = saved;
            if (!saved)
                return 0;
        }
    }
}

/* Binds l to path with the given mode (set through the umask around bind,
 * so the socket is never briefly more open than that).  A stale socket file
 * is replaced; one a live daemon answers on is an error. */
static int listen_at(struct ctl *c, struct listener *l, const char *path, mode_t mode, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    l->fd = -1;
    if (strlen(path) == 0 || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control socket '%s': path empty or longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (mkdir_parents(path, err, errlen) < 0)
        return -1;

    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            snprintf(err, errlen, "control socket %s: in use (is another memx-backd running?)", path);
            return -1;
        }
        unlink(path);       /* left behind by a daemon that died */
    }
    l->c = c;
    snprintf(l->path, sizeof(l->path), "%s", path);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    mode_t old = umask(0777 & ~mode);
    int rc = l->fd < 0 ? -1 : bind(l->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(l->fd, 16) < 0 || evloop_add_fd(c->el, l->fd, EV_READ, on_accept, l) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        if (rc == 0)
            unlink(path);
        if (l->fd >= 0)
            close(l->fd);
        l->fd = -1;
        return -1;
    }
    return 0;
}

static void listener_close(struct ctl *c, struct listener *l)
{
    if (l->fd < 0)
        return;
    evloop_del_fd(c->el, l->fd);
    close(l->fd);
    unlink(l->path);
    l->fd = -1;
}

struct ctl *ctl_new(struct evloop *el, const char *path, const struct ctl_ctx *ctx,
                    char *err, size_t errlen)
{
    struct ctl *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "control socket %s: out of memory", path);
        return NULL;
    }
    c->el = el;
    c->ctx = *ctx;
    c->start_ms = evloop_now_ms();
    c->ro.fd = -1;
    /* Root's socket: every command, so 0600. */
    if (listen_at(c, &c->main, path, 0600, err, errlen) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

int ctl_listen_ro(struct ctl *c, const char *path, char *err, size_t errlen)
{
    /* Any local user (a monitoring agent): what it may ask changes nothing. */
    c->ro.ro = true;
    return listen_at(c, &c->ro, path, 0666, err, errlen);
}

void ctl_free(struct ctl *c)
{
    if (!c)
        return;
    while (c->clients)
        client_close(c->clients);
    while (c->waits) {      /* owed by a catalog already freed */
        struct ctl_wait *w = c->waits;
        c->waits = w->next;
        free(w);
    }
    listener_close(c, &c->main);
    listener_close(c, &c->ro);
    free(c);
}
